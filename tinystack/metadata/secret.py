"""The secret the metadata proxy and API share: created once (mode 0600) in the state dir, and the HMACs that name
a guest.

A proxy signs each request: ``hmac_sha256(secret, "tinystack-metadata-v2\\n<network id>\\n<source ip>\\n<unix
time>\\n<METHOD>\\n<path>")``, hex, with the time in its own header. The API refuses a signature older or newer
than ``MAX_SKEW`` seconds, so a request recorded on the way to a metadata API across the network (the relay,
``[metadata] upstream``) cannot be replayed later, nor for another path. The older form,
``hmac_sha256(secret, "<network id>:<source ip>")``, names a guest forever; the API takes it only on its unix
socket, from proxies an older agent started (it never crosses a network)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

# The clocks of the network host and the API machines must agree (NTP, docs/deployment.md) within this.
MAX_SKEW = 60
_MAGIC = "tinystack-metadata-v2"


def load_or_create(path: Path) -> bytes:
    """The secret in ``path``; a new random one if the file does not exist yet (never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return load(path)


def load(path: Path) -> bytes:
    value = path.read_bytes().strip()
    if len(value) < 16:
        raise ValueError(f"{path}: the metadata secret is missing or too short")
    return value


def sign(secret: bytes, network_id: str, source_ip: str) -> str:
    """The older, timeless form (see the module docstring)."""
    return hmac.new(secret, f"{network_id}:{source_ip}".encode(), hashlib.sha256).hexdigest()


def verify(secret: bytes, network_id: str, source_ip: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, network_id, source_ip), signature.strip().lower())


def sign_request(secret: bytes, network_id: str, source_ip: str, timestamp: int, method: str, path: str) -> str:
    """The signature of one request: the guest's name, when it was made, and what it asks for."""
    message = "\n".join((_MAGIC, network_id, source_ip, str(timestamp), method.upper(), path))
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def verify_request(secret: bytes, network_id: str, source_ip: str, timestamp: str, method: str, path: str,
                   signature: str, now: float) -> bool:
    """True when ``signature`` was made with ``secret`` for exactly this request, within ``MAX_SKEW`` of ``now``."""
    stamp = timestamp.strip()
    # A bounded run of digits: int() would also take signs, spaces, underscores and 4,000-digit numbers.
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12 or abs(now - int(stamp)) > MAX_SKEW:
        return False
    expected = sign_request(secret, network_id, source_ip, int(stamp), method, path)
    return hmac.compare_digest(expected, signature.strip().lower())
