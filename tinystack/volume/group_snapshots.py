"""Group snapshots (3.14): one snapshot of every volume of a group, taken through the snapshot path (the volume
agent makes each); the group snapshot is available when all its snapshots are, and goes when they have."""

from __future__ import annotations

import builtins
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.volume.groups import ADDABLE, delete_members
from tinystack.volume.listing import page, parse_sort, sort_rows, tenant_rows
from tinystack.volume.models import Group, GroupSnapshot, Snapshot, Volume, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

# Cinder's group snapshot statuses (fields.GroupSnapshotStatus, without the never-stored "deleted").
STATUSES = ("available", "creating", "deleting", "error", "error_deleting", "updating")


def not_found(group_snapshot_id: str) -> errors.NotFound:
    return errors.NotFound(f"GroupSnapshot {group_snapshot_id} could not be found.")


class GroupSnapshots:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def find(self, s: Session, ctx: RequestContext, group_snapshot_id: str) -> GroupSnapshot:
        gs = s.get(GroupSnapshot, group_snapshot_id) if len(group_snapshot_id) <= 36 else None
        if gs is None or not (ctx.is_admin or gs.project_id == ctx.project_id):
            raise not_found(group_snapshot_id)
        return gs

    def create(self, ctx: RequestContext, body: dict[str, Any]) -> GroupSnapshot:
        self.svc.enforce(ctx, "group:create_group_snapshot")
        with self.svc.session() as s:
            g = self.svc.groups.find(s, ctx, str(body["group_id"]), lock=True)
            if g.status != "available":
                raise errors.BadRequest(f"Invalid group: Group {g.id} status must be available, but current status "
                                        f"is: {g.status}.")
            vols = list(s.scalars(select(Volume).where(Volume.group_id == g.id).order_by(Volume.created_at)))
            for vol in vols:
                if vol.status not in ADDABLE:
                    raise errors.BadRequest(f"Invalid volume: Volume {vol.id} status must be available or in-use, "
                                            f"but current status is: {vol.status}.")
            if vols:
                self.svc.quotas.check(s, g.project_id, snapshots=len(vols), gigabytes=sum(v.size for v in vols))
            gs = GroupSnapshot(id=str(uuid.uuid4()), group_id=g.id, group_type_id=g.group_type_id,
                               name=body.get("name"), description=body.get("description"), project_id=g.project_id,
                               user_id=ctx.user_id, status="creating" if vols else "available", created_at=utcnow())
            s.add(gs)
            s.flush()
            # Each member's snapshot is an ordinary one the agent makes; it names the group snapshot.
            member = {"name": gs.name, "description": gs.description}
            snap_ids = [self.svc.snapshots.make(s, ctx, vol, member, group_snapshot_id=gs.id).id for vol in vols]
            s.expunge(gs)
        for sid in snap_ids:
            self.svc.controller.publish_soon("snapshot", sid)
        return gs

    def get(self, ctx: RequestContext, group_snapshot_id: str) -> GroupSnapshot:
        self.svc.enforce(ctx, "group:get_group_snapshot")
        with self.svc.session() as s:
            gs = self.find(s, ctx, group_snapshot_id)
            s.expunge(gs)
        return gs

    def list(self, ctx: RequestContext, q: dict[str, str]) -> tuple[builtins.list[GroupSnapshot], bool]:
        self.svc.enforce(ctx, "group:get_all_group_snapshots")
        with self.svc.session() as s:
            stmt = tenant_rows(GroupSnapshot, ctx, q)
            for key in ("name", "status", "group_id"):
                if q.get(key):
                    stmt = stmt.where(getattr(GroupSnapshot, key) == q[key])
            pairs = [(k, d) for k, d in parse_sort(q) if k in ("id", "name", "status", "created_at", "updated_at")]
            rows, more = page(sort_rows(list(s.scalars(stmt)), pairs), q, self.svc.settings.max_limit)
            for r in rows:
                s.expunge(r)
        return rows, more

    def delete(self, ctx: RequestContext, group_snapshot_id: str) -> None:
        self.svc.enforce(ctx, "group:delete_group_snapshot")

        def attempt() -> builtins.list[str]:
            with self.svc.session() as s:
                gs = self.find(s, ctx, group_snapshot_id)
                in_use = s.scalar(select(Group.id).where(Group.group_snapshot_id == gs.id,
                                                         Group.status == "creating").limit(1))
                if gs.status not in ("available", "error") or in_use is not None:
                    raise errors.BadRequest("Invalid group snapshot: Group snapshot status must be available or "
                                            "error, and no Group can be currently using it as source for its "
                                            "creation.")
                snaps = list(s.scalars(select(Snapshot).where(Snapshot.group_snapshot_id == gs.id)))
                return delete_members(s, gs, Snapshot, snaps)

        for sid in desired.retry(attempt, what=f"GroupSnapshot {group_snapshot_id}"):
            self.svc.controller.publish_soon("snapshot", sid)

    def reset_status(self, ctx: RequestContext, group_snapshot_id: str, status: str) -> None:
        self.svc.enforce(ctx, "group:reset_group_snapshot_status")
        if status not in STATUSES:
            raise errors.BadRequest(f"Invalid input received: Group snapshot status {status!r} is not valid. Valid "
                                    f"statuses are: {', '.join(STATUSES)}.")
        with self.svc.session() as s:
            gs = self.find(s, ctx, group_snapshot_id)
            gs.status, gs.updated_at = status, utcnow()
