"""The node console bridge's wire rules (docs/consoles.md, "Several nodes and the split deployment"), shared by the
console proxy (the client, in an API process) and the compute agent (the server, on the node that holds the guest).

A connection starts with one signed request line naming the node, the instance and the console kind; the bridge
answers ``OK`` and from then on copies raw bytes between the connection and the guest's unix socket, or answers
``ERR <reason>`` and closes. The signature is an HMAC-SHA256, with the key the API processes and the agents share
(``[console] node_secret``), of every field and of a timestamp and a random nonce: a request recorded on the wire
is refused once it is older than ``MAX_SKEW`` seconds, and before that because its nonce was seen."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from dataclasses import dataclass

from tinystack.config import Config

MAGIC = "TSCONSOLE/1"
KINDS = ("vnc", "serial")
DEFAULT_PORT = 6081
# How far a request's timestamp may be from the bridge's clock (the machines run NTP, as leases need).
MAX_SKEW = 30.0
MAX_LINE = 512  # a request line is about 200 bytes; anything longer is no request
MIN_SECRET = 16
HANDSHAKE_TIMEOUT = 10.0

# The keys of ``[console]`` that both sides read (tinystack/console/settings.py accepts them too).
DEFAULTS: dict[str, str] = {
    # Where ``tinystack agent`` serves the bridge, ``address[:port]`` (port 6081 if none). Empty: not at all
    # with ``tinystack up`` (its proxy opens the sockets itself); with ``tinystack agent`` the node's
    # ``[compute] live_migration_inbound_addr`` (its underlay/management address), else 127.0.0.1, port 6081.
    "node_listen": "",
    # The key the API processes and the agents sign and check bridge requests with; required in split mode.
    "node_secret": "",
}

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$")
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_MAC = re.compile(r"^[0-9a-f]{64}$")


class Refused(Exception):
    """A request the bridge does not serve; ``str(exc)`` is the reason it answers."""


class BridgeError(ConnectionError):
    """The proxy's side: the bridge could not be reached or refused the request."""


@dataclass(frozen=True)
class BridgeSettings:
    listen: str  # "" when no bridge is configured
    secret: bytes  # b"" when none is configured


def load(config: Config) -> BridgeSettings:
    raw = {**DEFAULTS, **config.values.get("console", {})}
    secret = raw["node_secret"].strip().encode()
    if secret and len(secret) < MIN_SECRET:
        raise ValueError(f"[console] node_secret must be at least {MIN_SECRET} characters")
    listen = raw["node_listen"].strip()
    if listen:
        split_address(listen)  # refuse a malformed one at start
    return BridgeSettings(listen=listen, secret=secret)


def split_address(address: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> (host, port)."""
    text = address.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"not an address: {address!r}")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:  # a host name, or an IPv6 address without brackets (and then without a port)
        host, port_text = text, ""
        if ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(f"not an address: {address!r}") from None
    if not host:
        raise ValueError(f"not an address: {address!r}")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"not an address: {address!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"not an address: {address!r}")
    return host, port


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Request:
    host: str  # the node the request is for: a request for one node is no good at another
    instance_id: str
    kind: str
    timestamp: int
    nonce: str

    def message(self) -> bytes:
        return "\n".join((MAGIC, self.host, self.instance_id, self.kind, str(self.timestamp), self.nonce)).encode()


def sign(key: bytes, request: Request) -> str:
    return hmac.new(key, request.message(), hashlib.sha256).hexdigest()


def request_line(key: bytes, host: str, instance_id: str, kind: str, now: float | None = None,
                 nonce: str | None = None) -> bytes:
    """The line the proxy sends to open ``kind`` of ``instance_id`` on ``host``."""
    req = Request(host, instance_id, kind, int(time.time() if now is None else now), nonce or secrets.token_hex(16))
    return f"{MAGIC} {req.host} {req.instance_id} {req.kind} {req.timestamp} {req.nonce} {sign(key, req)}\n".encode()


def parse(line: bytes) -> tuple[Request, str]:
    """The request and its signature, or Refused for anything not of the exact form (fields are checked here,
    so nothing malformed, such as a path in place of an instance id, gets further)."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise Refused("malformed request") from None
    parts = text.rstrip("\n").split(" ")
    if len(parts) != 7 or parts[0] != MAGIC:
        raise Refused("malformed request")
    _, host, instance_id, kind, stamp, nonce, mac = parts
    if (not _HOST.match(host) or not _UUID.match(instance_id) or kind not in KINDS or not stamp.isdigit()
            or len(stamp) > 12 or not _NONCE.match(nonce) or not _MAC.match(mac)):
        raise Refused("malformed request")
    return Request(host, instance_id, kind, int(stamp), nonce), mac


class ReplayGuard:
    """The nonces of accepted requests, each kept until its timestamp is too old to pass anyway."""

    def __init__(self, max_skew: float = MAX_SKEW) -> None:
        self.max_skew = max_skew
        self._seen: dict[str, float] = {}  # nonce -> when it can be forgotten

    def spend(self, nonce: str, timestamp: int, now: float) -> bool:
        """True the first time ``nonce`` is offered, False after."""
        if len(self._seen) > 1024:
            self._seen = {n: until for n, until in self._seen.items() if until > now}
        until = self._seen.get(nonce)
        if until is not None and until > now:
            return False
        self._seen[nonce] = timestamp + self.max_skew + 1
        return True


def verify(key: bytes, line: bytes, host: str, guard: ReplayGuard, now: float | None = None) -> Request:
    """The request ``line`` makes of node ``host``, once its signature, freshness and nonce pass: else Refused."""
    if not key:
        raise Refused("no node_secret configured")
    req, mac = parse(line)
    if not hmac.compare_digest(sign(key, req), mac):
        raise Refused("bad signature")
    if req.host != host:
        raise Refused("request for another node")
    now = time.time() if now is None else now
    if abs(now - req.timestamp) > guard.max_skew:
        raise Refused("stale request")
    if not guard.spend(req.nonce, req.timestamp, now):
        raise Refused("replayed request")
    return req


async def open_bridge(address: str, key: bytes, host: str, instance_id: str, kind: str,
                      timeout: float = HANDSHAKE_TIMEOUT) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the bridge at ``address`` and open ``kind`` of ``instance_id`` on ``host``: the streams carry the
    guest's console from then on. BridgeError when it cannot be reached or refuses."""
    addr, port = split_address(address)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(addr, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise BridgeError(f"console bridge {address}: {exc or 'timed out'}") from None
    try:
        writer.write(request_line(key, host, instance_id, kind))
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        writer.close()
        raise BridgeError(f"console bridge {address}: {exc or 'timed out'}") from None
    if answer != b"OK\n":
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        reason = answer.decode("ascii", "replace").strip().removeprefix("ERR ") or "closed"
        raise BridgeError(f"console bridge {address} refused: {reason}")
    return reader, writer
