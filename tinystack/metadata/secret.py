"""The secret the metadata proxy and API share: created once (mode 0600) in the state dir, and the HMAC that
names a guest (``hmac_sha256(secret, "<network id>:<source ip>")``, hex)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path


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
    return hmac.new(secret, f"{network_id}:{source_ip}".encode(), hashlib.sha256).hexdigest()


def verify(secret: bytes, network_id: str, source_ip: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, network_id, source_ip), signature.strip().lower())
