"""Namespaces, links and addresses through iproute2, always via ``tinystack.core.host.run``."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinystack.core import host
from tinystack.network.drivers.base import Raced

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
# ioctl(2) NS_GET_NSTYPE (_IO(0xb7, 0x3)): answers only on an nsfs file, with the namespace's CLONE_* type.
_NS_GET_NSTYPE = 0xB703
_CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class Link:
    name: str
    kind: str  # "bridge", "veth", "tun", "vxlan", "" (plain)
    master: str | None
    up: bool
    mtu: int
    address: str
    peer: str | None = None  # a veth's other end, when it is in the same namespace
    ifindex: int = 0


def netns_exists(name: str) -> bool:
    """Whether ``/run/netns/<name>`` is a usable network namespace (an nsfs mount), not merely a file."""
    try:
        fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return bool(fcntl.ioctl(fd, _NS_GET_NSTYPE) == _CLONE_NEWNET)
    except OSError as exc:
        # ENOTTY: a plain file, left when the mount on it went (its mount namespace died with a killed
        # process). Anything else (an old kernel without the ioctl) is no proof of staleness.
        return exc.errno != errno.ENOTTY
    finally:
        os.close(fd)


def netns_stale(name: str) -> bool:
    """A file in /run/netns that no namespace is mounted on: ``ip netns add`` and ``ip -n`` both fail on it."""
    return (NETNS_DIR / name).exists() and not netns_exists(name)


async def _remove_stale(name: str) -> None:
    log.warning("network: /run/netns/%s holds no namespace any more (its mount went with a killed process); "
                "removing the leftover file", name)
    # ``ip netns del`` detaches whatever is mounted there and unlinks the file, which is all a stale one needs.
    await host.run(["ip", "netns", "del", name], check=False)
    (NETNS_DIR / name).unlink(missing_ok=True)


async def ensure_netns(name: str) -> bool:
    """Create namespace ``name`` with loopback up; True when it was created now (also when a stale file was
    in its place: whatever the old namespace held is gone, so the caller must set it up as new)."""
    if netns_exists(name):
        return False
    if netns_stale(name):
        await _remove_stale(name)
    await host.run(["ip", "netns", "add", name])
    await host.run(["ip", "-n", name, "link", "set", "lo", "up"])
    return True


async def netns_pids(name: str) -> list[int]:
    if not netns_exists(name):
        return []
    out = await host.run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


async def delete_netns(name: str) -> None:
    """Kill what still runs inside ``name`` (dnsmasq, proxies) and remove it; absent (or stale) is fine."""
    if netns_stale(name):
        await _remove_stale(name)
        return
    if not netns_exists(name):
        return
    for pid in await netns_pids(name):
        kill(pid, signal.SIGTERM)
    await host.run(["ip", "netns", "del", name], check=False)


def kill(pid: int, sig: int = signal.SIGTERM) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


async def links(netns: str) -> dict[str, Link]:
    """Every link in ``netns`` by name (one ``ip -j -d link`` call)."""
    out = await host.run(["ip", "-n", netns, "-j", "-d", "link", "show"])
    result: dict[str, Link] = {}
    for item in json.loads(out.stdout or "[]"):
        info: dict[str, Any] = item.get("linkinfo") or {}
        name = item["ifname"].split("@", 1)[0]
        result[name] = Link(
            name=name,
            kind=info.get("info_kind", ""),
            master=item.get("master"),
            up="UP" in item.get("flags", ()),
            mtu=int(item.get("mtu", 0)),
            address=item.get("address", ""),
            peer=item.get("link") if info.get("info_kind") == "veth" else None,
            ifindex=int(item.get("ifindex", 0)),
        )
    return result


async def addresses(netns: str | None, dev: str) -> set[str]:
    """The addresses configured on ``dev`` (IPv4 and IPv6) as ``ip/prefix`` strings.

    Only global, permanent ones: the kernel's own IPv6 link-local and autoconfigured addresses are not ours
    to add or remove, and missing the IPv6 ones we did add would make every reconcile add them again.
    """
    argv = ["ip", "-j", "addr", "show", "dev", dev, "scope", "global", "permanent"]
    if netns:
        argv[1:1] = ["-n", netns]
    out = await host.run(argv, check=False)
    if out.returncode != 0:
        return set()
    found: set[str] = set()
    for item in json.loads(out.stdout or "[]"):
        for addr in item.get("addr_info", ()):
            if "local" in addr:  # ip prints ``{}`` for each address its filter left out
                found.add(f"{addr['local']}/{addr['prefixlen']}")
    return found


# What iproute2 says when a device is not (or no longer) there, and when what it adds already is. Under churn
# both are the expected outcome of two reconciles (a network's and a port's, or the garbage collector's)
# looking at the same host a moment apart, not failures.
_GONE = ("Cannot find device", "does not exist", "No such device")
_EXISTS = ("File exists", "already assigned")


def race_of(message: str) -> str | None:
    """``"gone"`` or ``"exists"`` when ``message`` (a command's stderr) is one of those races, else None."""
    if any(marker in message for marker in _GONE):
        return "gone"
    if any(marker in message for marker in _EXISTS):
        return "exists"
    return None


def _failures(stderr: str) -> list[tuple[int | None, str]]:
    """``(line, message)`` per failed command of ``ip -force -batch``; a message with no line after it means
    ip gave up there (it exits on an argument it cannot resolve) and the lines after it never ran."""
    found: list[tuple[int | None, str]] = []
    pending: list[str] = []
    for line in stderr.splitlines():
        if line.startswith("Command failed -:"):
            number = line.removeprefix("Command failed -:").strip()
            found.append((int(number) if number.isdigit() else None, " ".join(pending)))
            pending = []
        elif line.strip():
            pending.append(line.strip())
    if pending:
        found.append((None, " ".join(pending)))
    return found


def _verb(command: str) -> str:
    words = command.split()
    return words[1] if len(words) > 1 else ""


async def batch(netns: str | None, commands: list[str], check: bool = True) -> None:
    """Run iproute2 commands in one process (``ip -batch``): one fork for a whole wiring step.

    Idempotent under churn: an ``add`` of what exists and a ``del`` of what is gone count as done (``-force``
    runs the rest of the batch); any other command on a device that vanished raises ``Raced``, so the
    reconcile looks again; anything else raises ``CommandFailed``.
    """
    if not commands:
        return
    argv = ["ip", "-force", "-batch", "-"]
    if netns:
        argv[1:1] = ["-n", netns]
    out = await host.run(argv, input=("\n".join(commands) + "\n").encode(), check=False)
    if out.returncode == 0 or not check:
        return
    raced: list[str] = []
    for number, message in _failures(out.stderr) or [(None, out.stdout.strip())]:
        command = commands[number - 1] if number is not None and 0 < number <= len(commands) else None
        race = race_of(message)
        if race is None:
            raise host.CommandFailed(out.argv, out.returncode, out.stdout, out.stderr)
        verb = _verb(command) if command is not None else ""
        if (race == "exists" and verb == "add") or (race == "gone" and verb in ("del", "delete")):
            log.debug("host: %r in %s: %s (already done)", command, netns or "the host", message)
            continue
        raced.append(f"{command or 'ip -batch'}: {message}")
    if raced:
        raise Raced(f"the host changed under this step in {netns or 'the host'}: {'; '.join(raced)}")


async def device_command(argv: list[str], netns: str | None = None) -> host.Completed:
    """One command about a device that may vanish or appear meanwhile: ``Raced`` when it did."""
    out = await host.run(argv, netns=netns, check=False)
    if out.returncode != 0:
        if race_of(out.stderr) is not None:
            raise Raced(f"the host changed under {' '.join(argv)}: {out.stderr.strip()}")
        raise host.CommandFailed(out.argv, out.returncode, out.stdout, out.stderr)
    return out


async def sysctl(netns: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl (never called without a namespace: the host's sysctls are the user's)."""
    await host.run(["sysctl", "-q", "-w", f"{key}={value}"], netns=netns)
