"""Generic volume groups (3.13): volumes of the group's volume types kept together, created from another group or
a group snapshot (3.14), deleted with their volumes. A group's own status follows its members': ``settle`` is
called by the controller whenever a member volume or snapshot reports."""

from __future__ import annotations

import builtins
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.volume.listing import page, parse_sort, sort_rows, tenant_rows
from tinystack.volume.models import Attachment, Group, GroupSnapshot, Snapshot, Volume, utcnow
from tinystack.volume.volumes import DELETABLE

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

# Cinder's group statuses (fields.GroupStatus, without the never-stored "deleted").
STATUSES = ("available", "creating", "deleting", "error", "error_deleting", "updating", "in-use")
ADDABLE = ("available", "in-use")
REMOVABLE = ("available", "in-use", "error", "error_deleting")


def not_found(group_id: str) -> errors.NotFound:
    return errors.NotFound(f"Group {group_id} could not be found.")


def split_ids(raw: str | None) -> builtins.list[str]:
    """``add_volumes``/``remove_volumes``: volume ids separated by commas, as Cinder takes them."""
    return [v.strip() for v in (raw or "").split(",") if v.strip()]


class Groups:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def find(self, s: Session, ctx: RequestContext, group_id: str, lock: bool = False) -> Group:
        """The group if the caller may see it. ``lock``: under its row lock, for changes that check its status or
        members (an add, a delete, a group snapshot or a new member racing each other serialize on the group)."""
        g = s.get(Group, group_id) if len(group_id) <= 36 else None
        if g is None or not (ctx.is_admin or g.project_id == ctx.project_id):
            raise not_found(group_id)
        if lock:
            s.refresh(g, with_for_update=True)
        return g

    def members(self, s: Session, group_ids: builtins.list[str]) -> dict[str, builtins.list[str]]:
        """Each group's volume ids."""
        out: dict[str, builtins.list[str]] = {gid: [] for gid in group_ids}
        if group_ids:
            for vid, gid in s.execute(select(Volume.id, Volume.group_id).where(Volume.group_id.in_(group_ids))
                                      .order_by(Volume.created_at)):
                out[str(gid)].append(vid)
        return out

    def admit(self, s: Session, ctx: RequestContext, group_id: str, volume_type_id: str) -> str:
        """A new volume of ``volume_type_id`` may join group ``group_id`` (3.13 ``group_id`` on create)."""
        g = self.find(s, ctx, group_id, lock=True)
        if g.status not in ("available", "creating"):
            raise errors.BadRequest(f"Invalid group: Group {g.id} status must be available, but current status is: "
                                    f"{g.status}.")
        if volume_type_id not in (g.volume_type_ids or []):
            raise errors.BadRequest(f"Invalid input received: Invalid volume_type provided: {volume_type_id} "
                                    f"(requested type must be supported by this group).")
        return g.id

    # --- create ---------------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, body: dict[str, Any]) -> Group:
        self.svc.enforce(ctx, "group:create")
        name = body.get("name")
        if not body.get("group_type"):
            raise errors.BadRequest(f"group_type must be provided to create group {name}.")
        if not body.get("volume_types"):
            raise errors.BadRequest(f"volume_types must be provided to create group {name}.")
        az = body.get("availability_zone") or self.svc.settings.default_availability_zone
        if az not in self.svc.zone_names():
            raise errors.BadRequest(f"Invalid input received: Availability zone '{az}' is invalid.")
        with self.svc.session() as s:
            gtype = self.svc.group_types.resolve(s, ctx, str(body["group_type"]))
            type_ids: builtins.list[str] = []
            for ref in body["volume_types"]:
                vtype = self.svc.types.resolve(s, ctx, str(ref))
                if vtype.id not in type_ids:
                    type_ids.append(vtype.id)
            self.svc.quotas.check(s, ctx.project_id or "", groups=1)
            # An empty group needs nothing from the backend: it is usable at once.
            g = Group(id=str(uuid.uuid4()), name=name, description=body.get("description"),
                      project_id=ctx.project_id or "", user_id=ctx.user_id, status="available", availability_zone=az,
                      group_type_id=gtype.id, volume_type_ids=type_ids, created_at=utcnow())
            s.add(g)
            s.flush()
            s.expunge(g)
        return g

    def create_from_src(self, ctx: RequestContext, body: dict[str, Any]) -> Group:
        """A new group like a source group (its volumes cloned) or a group snapshot (volumes from its snapshots)."""
        self.svc.enforce(ctx, "group:create")
        gs_id, src_id = body.get("group_snapshot_id"), body.get("source_group_id")
        if bool(gs_id) == bool(src_id):
            raise errors.BadRequest("Invalid input received: Either 'group_snapshot_id' or 'source_group_id' must be "
                                    "provided to create group, but not both.")
        sources: builtins.list[dict[str, Any]] = []
        with self.svc.session() as s:
            if gs_id:
                gs = self.svc.group_snapshots.find(s, ctx, str(gs_id))
                if gs.status != "available":
                    raise errors.BadRequest(f"Invalid group snapshot: Group snapshot {gs.id} status must be "
                                            f"available, but current status is: {gs.status}.")
                like = s.get(Group, gs.group_id)
                if like is None:
                    raise not_found(gs.group_id)
                for snap in s.scalars(select(Snapshot).where(Snapshot.group_snapshot_id == gs.id)
                                      .order_by(Snapshot.created_at)):
                    parent = s.get(Volume, snap.volume_id)
                    sources.append({"snapshot_id": snap.id, "size": snap.size, "name": parent.name if parent else None,
                                    "volume_type": parent.volume_type_id if parent else None})
            else:
                like = self.find(s, ctx, str(src_id))
                if like.status != "available":
                    raise errors.BadRequest(f"Invalid group: Source group {like.id} status must be available, but "
                                            f"current status is: {like.status}.")
                for vol in s.scalars(select(Volume).where(Volume.group_id == like.id).order_by(Volume.created_at)):
                    if vol.status not in ADDABLE:
                        raise errors.BadRequest(f"Invalid volume: Volume {vol.id} in the source group must be "
                                                f"available or in-use, but current status is: {vol.status}.")
                    sources.append({"source_volid": vol.id, "size": vol.size, "name": vol.name,
                                    "volume_type": vol.volume_type_id})
            if not sources:
                raise errors.BadRequest(f"Invalid group: {'Group snapshot' if gs_id else 'Source Group'} is empty. No "
                                        f"group will be created.")
            # The whole claim up front, so that a group is not left half made by a quota refusal.
            self.svc.quotas.check(s, ctx.project_id or "", groups=1, volumes=len(sources),
                                  gigabytes=sum(src["size"] for src in sources))
            g = Group(id=str(uuid.uuid4()), name=body.get("name"), description=body.get("description"),
                      project_id=ctx.project_id or "", user_id=ctx.user_id,
                      status="creating", availability_zone=like.availability_zone,
                      group_type_id=like.group_type_id, volume_type_ids=list(like.volume_type_ids or []),
                      group_snapshot_id=str(gs_id) if gs_id else None, source_group_id=str(src_id) if src_id else None,
                      created_at=utcnow())
            s.add(g)
            s.flush()
            s.expunge(g)
        try:
            for src in sources:
                self.svc.volumes.create(ctx, {**src, "group_id": g.id, "availability_zone": g.availability_zone})
        except errors.TinyError:
            with self.svc.session() as s:
                row = s.get(Group, g.id)
                if row is not None:
                    row.status, row.updated_at = "error", utcnow()
            raise
        return g

    # --- read ----------------------------------------------------------------------------------------

    def get(self, ctx: RequestContext, group_id: str) -> tuple[Group, builtins.list[str]]:
        self.svc.enforce(ctx, "group:get")
        with self.svc.session() as s:
            g = self.find(s, ctx, group_id)
            vols = self.members(s, [g.id])[g.id]
            s.expunge(g)
        return g, vols

    def list(self, ctx: RequestContext,
             q: dict[str, str]) -> tuple[builtins.list[Group], dict[str, builtins.list[str]], bool]:
        self.svc.enforce(ctx, "group:get_all")
        with self.svc.session() as s:
            stmt = tenant_rows(Group, ctx, q)
            for key in ("name", "status", "availability_zone"):
                if q.get(key):
                    stmt = stmt.where(getattr(Group, key) == q[key])
            pairs = [(k, d) for k, d in parse_sort(q) if k in ("id", "name", "status", "created_at", "updated_at")]
            rows, more = page(sort_rows(list(s.scalars(stmt)), pairs), q, self.svc.settings.max_limit)
            members = self.members(s, [g.id for g in rows])
            for g in rows:
                s.expunge(g)
        return rows, members, more

    # --- update --------------------------------------------------------------------------------------

    def update(self, ctx: RequestContext, group_id: str, body: dict[str, Any]) -> None:
        """Name, description, and volumes added (of the group's types, available or in-use) or removed."""
        self.svc.enforce(ctx, "group:update")
        add, remove = split_ids(body.get("add_volumes")), split_ids(body.get("remove_volumes"))
        if body.get("name") is None and body.get("description") is None and not add and not remove:
            raise errors.BadRequest("Name, description, add_volumes, and remove_volumes can not be all empty in the "
                                    "request body.")
        if set(add) & set(remove):
            raise errors.BadRequest(f"Invalid volume: UUIDs {sorted(set(add) & set(remove))} are in both add and "
                                    f"remove volume list.")
        with self.svc.session() as s:
            g = self.find(s, ctx, group_id, lock=True)
            if g.status != "available":
                raise errors.BadRequest(f"Invalid group: Group {g.id} status must be available, but current status "
                                        f"is: {g.status}.")
            for vid in add:
                vol = s.get(Volume, vid) if len(vid) <= 36 else None
                if vol is None or vol.project_id != g.project_id:
                    raise errors.BadRequest(f"Invalid volume: Cannot add volume {vid} to group {g.id} because volume "
                                            f"cannot be found.")
                if vol.group_id == g.id:
                    continue
                if vol.group_id is not None:
                    raise errors.BadRequest(f"Invalid volume: Cannot add volume {vid} to group {g.id} because it is "
                                            f"already in group {vol.group_id}.")
                if vol.volume_type_id not in (g.volume_type_ids or []):
                    raise errors.BadRequest(f"Invalid volume: Cannot add volume {vid} to group {g.id} because volume "
                                            f"type {vol.volume_type_id} is not supported by the group.")
                if vol.status not in ADDABLE:
                    raise errors.BadRequest(f"Invalid volume: Cannot add volume {vid} to group {g.id} because volume "
                                            f"is in an invalid state: {vol.status}. Valid states are: "
                                            f"{', '.join(ADDABLE)}.")
                vol.group_id, vol.updated_at = g.id, utcnow()
            for vid in remove:
                vol = s.get(Volume, vid) if len(vid) <= 36 else None
                if vol is None or vol.group_id != g.id:
                    raise errors.BadRequest(f"Invalid volume: Cannot remove volume {vid} from group {g.id} because "
                                            f"it is not in the group.")
                if vol.status not in REMOVABLE:
                    raise errors.BadRequest(f"Invalid volume: Cannot remove volume {vid} from group {g.id} because "
                                            f"volume is in an invalid state: {vol.status}. Valid states are: "
                                            f"{', '.join(REMOVABLE)}.")
                vol.group_id, vol.updated_at = None, utcnow()
            if body.get("name") is not None:
                g.name = body["name"]
            if body.get("description") is not None:
                g.description = body["description"]
            g.updated_at = utcnow()

    # --- delete / admin ------------------------------------------------------------------------------

    def delete(self, ctx: RequestContext, group_id: str, delete_volumes: bool) -> None:
        """The group, and with ``delete_volumes`` its volumes: the group goes when the last one has."""
        self.svc.enforce(ctx, "group:delete")

        def attempt() -> builtins.list[str]:
            with self.svc.session() as s:
                g = self.find(s, ctx, group_id, lock=True)
                # With delete-volumes any status will do, as in Cinder (a group stuck in error_deleting can go).
                if not delete_volumes and g.status not in ("available", "error"):
                    raise errors.BadRequest(f"Invalid group: Group status must be available or error, but current "
                                            f"status is: {g.status}.")
                if s.scalar(select(GroupSnapshot.id).where(GroupSnapshot.group_id == g.id).limit(1)) is not None:
                    raise errors.BadRequest("Invalid group: Group has existing snapshots.")
                vols = list(s.scalars(select(Volume).where(Volume.group_id == g.id)))
                if vols and not delete_volumes:
                    raise errors.BadRequest(f"Invalid group: Group {g.id} still contains volumes. The delete-volumes "
                                            f"flag is required to delete it.")
                for vol in vols:
                    if s.scalar(select(Attachment.id).where(Attachment.volume_id == vol.id).limit(1)) is not None:
                        raise errors.BadRequest(f"Invalid volume: Volume {vol.id} in group {g.id} is attached. Need "
                                                f"to detach first.")
                    if s.scalar(select(Snapshot.id).where(Snapshot.volume_id == vol.id).limit(1)) is not None:
                        raise errors.BadRequest(f"Invalid volume: Volume {vol.id} in group {g.id} still has "
                                                f"dependent snapshots.")
                    if vol.status not in (*DELETABLE, "error_deleting"):
                        raise errors.BadRequest(f"Invalid volume: Volume {vol.id} in group {g.id} status must be "
                                                f"available or error, but current status is: {vol.status}.")
                return delete_members(s, g, Volume, vols)

        for vid in desired.retry(attempt, what=f"Group {group_id}"):
            self.svc.controller.publish_soon("volume", vid)

    def reset_status(self, ctx: RequestContext, group_id: str, status: str) -> None:
        self.svc.enforce(ctx, "group:reset_status")
        if status not in STATUSES:
            raise errors.BadRequest(f"Invalid input received: Group status {status!r} is not valid. Valid statuses "
                                    f"are: {', '.join(STATUSES)}.")
        with self.svc.session() as s:
            g = self.find(s, ctx, group_id)
            g.status, g.updated_at = status, utcnow()

    # --- following the members -----------------------------------------------------------------------
    # (``delete_members`` below starts a delete; ``settle`` finishes it.)

    def settle(self, s: Session, row: Volume | Snapshot) -> None:
        """After an agent report on ``row`` (perhaps just deleted): the status its group or group snapshot has
        once every member has moved. Runs in the controller's transaction."""
        s.flush()
        if isinstance(row, Volume) and row.group_id:
            g = s.get(Group, row.group_id)
            if g is not None:
                statuses = list(s.scalars(select(Volume.status).where(Volume.group_id == g.id)))
                self._settle(s, g, statuses, "error", expected=self._expected(s, g))
        elif isinstance(row, Snapshot) and row.group_snapshot_id:
            gs = s.get(GroupSnapshot, row.group_snapshot_id)
            if gs is not None:  # its snapshots were all made with it, in one transaction
                statuses = list(s.scalars(select(Snapshot.status).where(Snapshot.group_snapshot_id == gs.id)))
                self._settle(s, gs, statuses, "error")

    @staticmethod
    def _expected(s: Session, g: Group) -> int:
        """How many volumes a group being made from a source will have: create-from-src makes them one by one,
        so the first ready need not be the last."""
        if g.status != "creating":
            return 0
        if g.group_snapshot_id:
            return len(list(s.scalars(select(Snapshot.id).where(Snapshot.group_snapshot_id == g.group_snapshot_id))))
        if g.source_group_id:
            return len(list(s.scalars(select(Volume.id).where(Volume.group_id == g.source_group_id))))
        return 0

    @staticmethod
    def _settle(s: Session, owner: Group | GroupSnapshot, statuses: builtins.list[str], error: str,
                expected: int = 0) -> None:
        if owner.status == "creating":
            if any(st.startswith("error") for st in statuses):
                owner.status, owner.updated_at = error, utcnow()
            elif len(statuses) >= expected and all(st in ("available", "in-use") for st in statuses):
                owner.status, owner.updated_at = "available", utcnow()
        elif owner.status == "deleting":
            if not statuses:
                s.delete(owner)
            elif any(st == "error_deleting" for st in statuses):
                owner.status, owner.updated_at = "error_deleting", utcnow()


def delete_members(s: Session, owner: Group | GroupSnapshot, model: type[Volume] | type[Snapshot],
                   members: builtins.list[Volume] | builtins.list[Snapshot]) -> builtins.list[str]:
    """Start deleting a group's volumes or a group snapshot's snapshots, each only from the status it was checked
    in: the owner is ``deleting`` until ``settle`` sees the last member go, or goes now if it has none. Returns the
    members' ids, to publish once committed."""
    if not members:
        s.delete(owner)
        return []
    for m in members:
        desired.bump_or_lose(s, model, m.id, m.generation, {"status": "deleting", "updated_at": utcnow()},
                             guard={"status": m.status})
    owner.status, owner.updated_at = "deleting", utcnow()
    return [m.id for m in members]
