"""Snapshot rules: a point-in-time copy of a volume's file, made by the volume agent; list, update, delete
and metadata."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.volume.listing import page, parse_metadata_filter, parse_sort, sort_rows
from tinystack.volume.models import Snapshot, Volume, utcnow
from tinystack.volume.retype import refuse_if_migrating
from tinystack.volume.schemas import truthy

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService


def not_found(snapshot_id: str) -> errors.NotFound:
    return errors.NotFound(f"Snapshot {snapshot_id} could not be found.")


class Snapshots:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def find(self, s: Session, ctx: RequestContext, snapshot_id: str) -> Snapshot:
        snap = s.get(Snapshot, snapshot_id) if len(snapshot_id) <= 36 else None
        if snap is None or not (ctx.is_admin or snap.project_id == ctx.project_id):
            raise not_found(snapshot_id)
        return snap

    def get(self, ctx: RequestContext, snapshot_id: str) -> Snapshot:
        self.svc.enforce(ctx, "volume:get_snapshot")
        with self.svc.session() as s:
            snap = self.find(s, ctx, snapshot_id)
            s.expunge(snap)
        return snap

    def create(self, ctx: RequestContext, body: dict[str, Any], in_use_without_force: bool) -> Snapshot:
        self.svc.enforce(ctx, "volume:create_snapshot")
        volume_id = str(body["volume_id"])
        with self.svc.session() as s:
            vol = s.get(Volume, volume_id) if body["volume_id"] and len(volume_id) <= 36 else None
            if vol is None or not (ctx.is_admin or vol.project_id == ctx.project_id):
                raise errors.NotFound(f"Volume {volume_id} could not be found.")
            force = truthy(body.get("force", False)) or in_use_without_force
            if vol.status != "available" and not (vol.status == "in-use" and force):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be available, but current "
                                        f"status is: {vol.status}.")
            refuse_if_migrating(vol)
            self.svc.quotas.check(s, vol.project_id, snapshots=1, gigabytes=vol.size)
            snap = self.make(s, ctx, vol, body)
            s.expunge(snap)
        self.svc.controller.publish_soon("snapshot", snap.id)
        return snap

    def make(self, s: Session, ctx: RequestContext, vol: Volume, body: dict[str, Any],
             group_snapshot_id: str | None = None) -> Snapshot:
        """The new snapshot row of ``vol`` (checked and quota-claimed by the caller); publish it after commit."""
        snap = Snapshot(id=str(uuid.uuid4()), volume_id=vol.id, name=body.get("name", body.get("display_name")),
                        description=body.get("description", body.get("display_description")),
                        project_id=vol.project_id, user_id=ctx.user_id, size=vol.size, status="creating",
                        host=vol.host, meta=dict(body.get("metadata") or {}), generation=1, created_at=utcnow(),
                        group_snapshot_id=group_snapshot_id)
        s.add(snap)
        s.flush()
        return snap

    def list(self, ctx: RequestContext, q: dict[str, str]) -> tuple[builtins.list[Snapshot], bool]:
        self.svc.enforce(ctx, "volume:get_all_snapshots")
        all_tenants = ctx.is_admin and "all_tenants" in q and truthy(q.get("all_tenants") or "1")
        with self.svc.session() as s:
            stmt = select(Snapshot)
            if not all_tenants:
                stmt = stmt.where(Snapshot.project_id == ctx.project_id)
            elif q.get("project_id"):
                stmt = stmt.where(Snapshot.project_id == q["project_id"])
            name = q.get("name", q.get("display_name"))
            if name is not None:
                stmt = stmt.where(Snapshot.name == name)
            for key in ("status", "volume_id"):
                if q.get(key):
                    stmt = stmt.where(getattr(Snapshot, key) == q[key])
            rows = list(s.scalars(stmt))
            if q.get("metadata"):
                want = parse_metadata_filter(q["metadata"])
                rows = [r for r in rows if all((r.meta or {}).get(k) == v for k, v in want.items())]
            pairs = [(k, d) for k, d in parse_sort(q) if k in ("id", "name", "status", "size", "created_at",
                                                                 "updated_at", "project_id", "user_id")]
            rows, more = page(sort_rows(rows, pairs), q, self.svc.settings.max_limit)
            for r in rows:
                s.expunge(r)
        return rows, more

    def update(self, ctx: RequestContext, snapshot_id: str, body: dict[str, Any]) -> Snapshot:
        self.svc.enforce(ctx, "volume:update_snapshot")
        with self.svc.session() as s:
            snap = self.find(s, ctx, snapshot_id)
            if "name" in body or "display_name" in body:
                snap.name = body.get("name", body.get("display_name"))
            if "description" in body or "display_description" in body:
                snap.description = body.get("description", body.get("display_description"))
            snap.updated_at = utcnow()
            s.flush()
            s.expunge(snap)
        return snap

    def metadata(self, ctx: RequestContext, snapshot_id: str,
                 change: Callable[[dict[str, str]], dict[str, str]] | None = None) -> dict[str, str]:
        self.svc.enforce(ctx, "volume:snapshot_metadata" if change else "volume:get_snapshot")
        with self.svc.session() as s:
            snap = self.find(s, ctx, snapshot_id)
            meta = dict(snap.meta or {})
            if change is not None:
                meta = change(meta)
                snap.meta, snap.updated_at = meta, utcnow()
            return meta

    def delete(self, ctx: RequestContext, snapshot_id: str, force: bool = False) -> None:
        self.svc.enforce(ctx, "volume:delete_snapshot")

        def attempt() -> None:
            with self.svc.session() as s:
                snap = self.find(s, ctx, snapshot_id)
                if snap.group_snapshot_id is not None:  # it goes with its group snapshot
                    raise errors.BadRequest("Invalid snapshot: Snapshot status must be available or error and must "
                                            "not be part of a group.")
                if force:
                    self.svc.enforce(ctx, "volume_extension:snapshot_admin_actions:force_delete")
                elif snap.status not in ("available", "error", "error_deleting"):
                    raise errors.BadRequest(f"Invalid snapshot: Snapshot status must be available or error (it "
                                            f"is {snap.status}).")
                desired.bump_or_lose(s, Snapshot, snap.id, snap.generation,
                                     {"status": "deleting", "updated_at": utcnow()}, guard={"status": snap.status})

        desired.retry(attempt, what=f"Snapshot {snapshot_id}")
        self.svc.controller.publish_soon("snapshot", snapshot_id)

    def reset_status(self, ctx: RequestContext, snapshot_id: str, status: str) -> None:
        self.svc.enforce(ctx, "volume_extension:snapshot_admin_actions:reset_status")
        if status not in ("available", "error", "creating", "deleting", "error_deleting"):
            raise errors.BadRequest(f"Invalid input received: '{status}' is not a valid snapshot status.")
        with self.svc.session() as s:
            snap = self.find(s, ctx, snapshot_id)
            snap.status, snap.updated_at = status, utcnow()
