"""Password and secret hashing with bcrypt. Hashing is slow on purpose, so callers run it off the loop."""

from __future__ import annotations

import bcrypt

# bcrypt reads at most 72 bytes; longer secrets are truncated consistently (Keystone does the same).
_MAX = 72


def hash_secret(secret: str, rounds: int) -> str:
    return bcrypt.hashpw(secret.encode()[:_MAX], bcrypt.gensalt(rounds)).decode()


def check_secret(secret: str, hashed: str | None) -> bool:
    if not hashed:
        return False
    try:
        return bcrypt.checkpw(secret.encode()[:_MAX], hashed.encode())
    except ValueError:
        return False
