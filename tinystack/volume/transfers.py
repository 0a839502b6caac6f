"""Volume transfers: a project offers an available volume (and its snapshots unless ``no_snapshots``) to
whoever presents the transfer's id and auth key. The key is shown once, at creation; only its salted hash is
kept. Accepting moves the volume to the accepting project within that project's quota."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.models import Snapshot, Transfer, Volume, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

KEY_BYTES = 8  # 16 hex characters, as Cinder's keys


def digest(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}{key}".encode()).hexdigest()


def not_found(transfer_id: str) -> errors.NotFound:
    return errors.NotFound(f"Transfer {transfer_id} could not be found.")


class Transfers:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def _find(self, s: Session, ctx: RequestContext, transfer_id: str, *, any_project: bool = False) -> Transfer:
        t = s.get(Transfer, transfer_id) if len(transfer_id) <= 36 else None
        if t is None or not (any_project or ctx.is_admin or t.project_id == ctx.project_id):
            raise not_found(transfer_id)
        return t

    def _snapshots(self, s: Session, vol: Volume) -> builtins.list[Snapshot]:
        return list(s.scalars(select(Snapshot).where(Snapshot.volume_id == vol.id,
                                                     Snapshot.project_id == vol.project_id)))

    def create(self, ctx: RequestContext, volume_id: str, name: str | None,
               no_snapshots: bool) -> tuple[Transfer, str]:
        """The new transfer and its auth key (returned this once)."""
        self.svc.enforce(ctx, "volume:create_transfer")
        key, salt = secrets.token_hex(KEY_BYTES), secrets.token_hex(8)
        with self.svc.session() as s:
            vol = self.svc.volumes.find(s, ctx, volume_id)
            if vol.status != "available":
                raise errors.BadRequest(f"Invalid volume: status must be available to transfer volume "
                                        f"{volume_id}, but the status is {vol.status}.")
            # A group and its group snapshots stay in one project: their members are not given away.
            if vol.group_id is not None or any(snap.group_snapshot_id for snap in self._snapshots(s, vol)):
                raise errors.BadRequest(f"Invalid volume: volume {volume_id} belongs to a group or a group snapshot; "
                                        f"remove it from the group (and delete the group snapshot) to transfer it.")
            if not no_snapshots:
                busy = [snap.id for snap in self._snapshots(s, vol) if snap.status != "available"]
                if busy:
                    raise errors.BadRequest(f"Invalid snapshot: snapshot {busy[0]} of volume {volume_id} must be "
                                            f"available to transfer it.")
            t = Transfer(id=str(uuid.uuid4()), volume_id=vol.id, name=name, project_id=vol.project_id, salt=salt,
                         crypt_hash=digest(salt, key), no_snapshots=no_snapshots, created_at=utcnow())
            s.add(t)
            vol.previous_status, vol.status, vol.updated_at = vol.status, "awaiting-transfer", utcnow()
            s.flush()
            s.expunge(t)
        return t, key

    def get(self, ctx: RequestContext, transfer_id: str) -> Transfer:
        self.svc.enforce(ctx, "volume:get_transfer")
        with self.svc.session() as s:
            t = self._find(s, ctx, transfer_id)
            s.expunge(t)
        return t

    def list(self, ctx: RequestContext, all_projects: bool, name: str | None) -> builtins.list[Transfer]:
        self.svc.enforce(ctx, "volume:get_all_transfers")
        stmt = select(Transfer).order_by(Transfer.created_at, Transfer.id)
        if all_projects:
            self.svc.enforce(ctx, "volume:get_all_tenants")
        else:
            stmt = stmt.where(Transfer.project_id == ctx.project_id)
        if name:
            stmt = stmt.where(Transfer.name == name)
        with self.svc.session() as s:
            rows = list(s.scalars(stmt))
            for t in rows:
                s.expunge(t)
        return rows

    def delete(self, ctx: RequestContext, transfer_id: str) -> None:
        self.svc.enforce(ctx, "volume:delete_transfer")
        with self.svc.session() as s:
            t = self._find(s, ctx, transfer_id)
            vol = s.get(Volume, t.volume_id)
            if vol is not None and vol.status == "awaiting-transfer":
                vol.status, vol.previous_status, vol.updated_at = "available", None, utcnow()
            s.delete(t)

    def accept(self, ctx: RequestContext, transfer_id: str, auth_key: str) -> Transfer:
        """Move the volume (and its snapshots unless the transfer says not) to the caller's project."""
        self.svc.enforce(ctx, "volume:accept_transfer")
        if not ctx.project_id:
            raise errors.BadRequest("Invalid input received: a project-scoped token is needed to accept a transfer.")
        with self.svc.session() as s:
            t = self._find(s, ctx, transfer_id, any_project=True)
            if not hmac.compare_digest(t.crypt_hash, digest(t.salt, auth_key)):
                raise errors.BadRequest(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth "
                                        f"key.")
            vol = s.get(Volume, t.volume_id)
            if vol is None or vol.status != "awaiting-transfer":
                raise errors.BadRequest(f"Invalid volume: Transfer {transfer_id} failed: the volume is "
                                        f"{vol.status if vol is not None else 'gone'}.")
            snaps = [] if t.no_snapshots else self._snapshots(s, vol)
            if ctx.project_id != vol.project_id:
                # The giving project's usage drops by the same amounts as the rows move (usage is counted).
                self.svc.quotas.check(s, ctx.project_id, volume_gb=vol.size, volumes=1, snapshots=len(snaps),
                                      gigabytes=vol.size + sum(x.size for x in snaps))
            for snap in snaps:
                snap.project_id, snap.user_id, snap.updated_at = ctx.project_id, ctx.user_id, utcnow()
            vol.project_id, vol.user_id = ctx.project_id, ctx.user_id
            vol.status, vol.previous_status, vol.updated_at = "available", None, utcnow()
            s.delete(t)
            s.flush()
            s.expunge(t)
        return t
