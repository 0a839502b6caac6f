"""Keypairs, per user: generated (the private key is returned once and never stored) or imported."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import func, select

from tinystack.compute.models import KeyPair, utcnow
from tinystack.core import errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

_SSH_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


def fingerprint(public_key: str) -> str:
    """Nova's fingerprint: MD5 of the key blob in colon-separated hex."""
    parts = public_key.split()
    if len(parts) < 2 or parts[0] not in _SSH_TYPES:
        raise errors.BadRequest("Keypair data is invalid: failed to generate fingerprint")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except ValueError:
        raise errors.BadRequest("Keypair data is invalid: failed to generate fingerprint") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate() -> tuple[str, str]:
    """A new RSA key as (public OpenSSH line, private PEM), as Nova generates them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return public + " Generated-by-Nova", private


def generate_ed25519() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return public, private


class Keypairs:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def _owner(self, ctx: RequestContext, user_id: str | None, action: str) -> str:
        """Whose key pairs the call is about, once policy allows ``action`` on them (Nova's rule names)."""
        owner = ctx.user_id
        if user_id and user_id != ctx.user_id:
            self.svc.enforce(ctx, "os_compute_api:os-keypairs:other_user")
            owner = user_id
        self.svc.enforce(ctx, f"os_compute_api:os-keypairs:{action}", {"user_id": owner})
        return owner

    def list(self, ctx: RequestContext, user_id: str | None = None) -> list[KeyPair]:
        owner = self._owner(ctx, user_id, "index")
        with self.svc.session() as s:
            return list(s.scalars(select(KeyPair).where(KeyPair.user_id == owner).order_by(KeyPair.name)).all())

    def get(self, ctx: RequestContext, name: str, user_id: str | None = None) -> KeyPair:
        owner = self._owner(ctx, user_id, "show")
        with self.svc.session() as s:
            kp = s.get(KeyPair, (owner, name))
            if kp is None:
                raise errors.NotFound(f"Keypair {name} not found for user {owner}")
            return kp

    def create(self, ctx: RequestContext, name: str, public_key: str | None, key_type: str,
               user_id: str | None = None) -> tuple[KeyPair, str | None]:
        """The new keypair and, when generated, its private key (shown once, never stored)."""
        owner = self._owner(ctx, user_id, "create")
        private = None
        if public_key is None:
            public_key, private = generate() if key_type == "ssh" else generate_ed25519()
        elif key_type == "x509":
            raise errors.BadRequest("Keypair data is invalid: x509 keypairs are not supported by tinystack")
        # Stored exactly as given (trailing newline included): clients compare it with their key file.
        fp = fingerprint(public_key.strip())
        with self.svc.session() as s:
            if s.get(KeyPair, (owner, name)) is not None:
                raise errors.Conflict(f"Key pair '{name}' already exists.")
            used = s.scalar(select(func.count()).select_from(KeyPair).where(KeyPair.user_id == owner)) or 0
            limit = self.svc.quotas.limit_for(s, ctx.project_id or "", "key_pairs")
            if 0 <= limit <= used:
                raise errors.OverQuota("Quota exceeded, too many key pairs.")
            kp = KeyPair(user_id=owner, name=name, type=key_type, fingerprint=fp, public_key=public_key,
                         created_at=utcnow())
            s.add(kp)
        return kp, private

    def delete(self, ctx: RequestContext, name: str, user_id: str | None = None) -> None:
        owner = self._owner(ctx, user_id, "delete")
        with self.svc.session() as s:
            kp = s.get(KeyPair, (owner, name))
            if kp is None:
                raise errors.NotFound(f"Keypair {name} not found for user {owner}")
            s.delete(kp)
