"""Fernet token format and key repository: key files 0 (staged), 1..N (N is primary), rotated in place.

A token carries only who, how, which scope and when; roles and catalog are looked up at validation,
so a changed assignment takes effect on the very next request.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgpack
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tinystack.core import errors

PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class TokenPayload:
    user_id: str
    methods: tuple[str, ...]
    scope_type: str  # "unscoped", "project", "domain" or "system"
    scope_id: str | None
    issued_at: float
    expires_at: float
    audit_ids: tuple[str, ...]
    app_cred_id: str | None = None
    trust_id: str | None = None  # OS-TRUST: the token acts through this trust (scope_type is "project")


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KeyRepository:
    """The directory of Fernet keys. Only ``setup`` and ``rotate`` write; both are safe to repeat."""

    def __init__(self, path: Path, max_active_keys: int = 3) -> None:
        self.path = path
        self.max_active_keys = max(2, max_active_keys)
        self._fernet: MultiFernet | None = None
        self._stamp: tuple[tuple[str, float], ...] = ()

    def _indexes(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write(self, index: int, key: bytes) -> None:
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        tmp.replace(self.path / str(index))

    def setup(self) -> None:
        """Create the repository with a staged key (0) and a primary key (1) unless it exists."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        indexes = self._indexes()
        if 0 not in indexes:
            self._write(0, Fernet.generate_key())
        if not [i for i in indexes if i > 0]:
            self._write(1, Fernet.generate_key())
        self._fernet = None

    def rotate(self) -> int:
        """Promote the staged key to primary, stage a new one, and drop the oldest beyond the limit."""
        self.setup()
        indexes = self._indexes()
        new_primary = max(indexes) + 1
        (self.path / "0").replace(self.path / str(new_primary))
        self._write(0, Fernet.generate_key())
        secondaries = [i for i in self._indexes() if 0 < i < new_primary]
        excess = len(secondaries) + 2 - self.max_active_keys
        for index in secondaries[: max(0, excess)]:
            (self.path / str(index)).unlink()
        self._fernet = None
        return new_primary

    def fernet(self) -> MultiFernet:
        """Primary key first (encrypts), then the others (decrypt). Reloaded when the files change."""
        stamp = tuple((p.name, p.stat().st_mtime) for p in sorted(self.path.iterdir()) if p.name.isdigit())
        if self._fernet is None or stamp != self._stamp:
            indexes = sorted((int(name) for name, _ in stamp), reverse=True)
            if not indexes or indexes[0] == 0:
                raise RuntimeError(f"fernet key repository {self.path} has no primary key")
            keys = [Fernet((self.path / str(i)).read_bytes().strip()) for i in indexes if i > 0]
            if 0 in indexes:
                keys.append(Fernet((self.path / "0").read_bytes().strip()))
            self._fernet = MultiFernet(keys)
            self._stamp = stamp
        return self._fernet


class TokenFormatter:
    """Encrypts payloads into opaque token strings and back."""

    def __init__(self, keys: KeyRepository) -> None:
        self.keys = keys
        self._fernet = keys.fernet()

    def reload(self) -> None:
        self._fernet = self.keys.fernet()

    def encode(self, p: TokenPayload) -> str:
        fields = [PAYLOAD_VERSION, p.user_id, list(p.methods), p.scope_type, p.scope_id, p.issued_at, p.expires_at,
                  list(p.audit_ids), p.app_cred_id]
        if p.trust_id is not None:
            # Only a trust-scoped token carries the trust: every other token keeps the shorter payload.
            fields.append(p.trust_id)
        packed = msgpack.packb(fields)
        return self._fernet.encrypt(packed).decode().rstrip("=")

    def decode(self, token: str) -> TokenPayload:
        padded = token + "=" * (-len(token) % 4)
        try:
            raw = self._fernet.decrypt(padded.encode())
        except (InvalidToken, ValueError, TypeError):
            # Keys may have been rotated by another process since we loaded them.
            self.reload()
            try:
                raw = self._fernet.decrypt(padded.encode())
            except (InvalidToken, ValueError, TypeError):
                raise errors.NotFound("Could not find token.") from None
        try:
            version, user_id, methods, scope_type, scope_id, issued, expires, audit_ids, app_cred, *rest = \
                msgpack.unpackb(raw)
        except (ValueError, TypeError, msgpack.UnpackException):
            raise errors.NotFound("Could not find token.") from None
        if version != PAYLOAD_VERSION or len(rest) > 1:
            raise errors.NotFound("Could not find token.")
        return TokenPayload(user_id, tuple(methods), scope_type, scope_id, issued, expires, tuple(audit_ids), app_cred,
                            rest[0] if rest else None)
