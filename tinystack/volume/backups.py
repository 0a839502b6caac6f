"""Backup rules: a volume's (or a snapshot's) data copied into object storage by the volume host's backup agent,
full or incremental; list, show, update, delete, restore to a new or an existing volume, and the admin actions.
Export and import of backup records are ``backup_records``."""

from __future__ import annotations

import builtins
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.volume.backup_controller import volume_back
from tinystack.volume.listing import page, parse_metadata_filter, parse_sort, sort_rows
from tinystack.volume.models import Backup, Volume, utcnow
from tinystack.volume.schemas import truthy
from tinystack.volume.volume_actions import invalid
from tinystack.volume.volumes import parse_size

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

DEFAULT_CONTAINER = "volumebackups"
STATUSES = ("creating", "available", "deleting", "error", "restoring", "error_deleting")
# What an admin may reset a backup to (Cinder's os-reset_status).
RESETTABLE = ("available", "error")
SORT_KEYS = ("id", "name", "status", "size", "created_at", "updated_at", "project_id", "user_id", "volume_id",
             "container", "availability_zone", "data_timestamp", "object_count")


def not_found(backup_id: str) -> errors.NotFound:
    return errors.NotFound(f"Backup {backup_id} could not be found.")


def invalid_backup(message: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid backup: {message}")


def object_prefix(volume_id: str, backup_id: str, az: str, when: Any) -> str:
    """Cinder's chunked-driver object prefix: ``volume_<id>/<UTC stamp>/az_<zone>_backup_<id>``."""
    return f"volume_{volume_id}/{when.strftime('%Y%m%d%H%M%S')}/az_{az}_backup_{backup_id}"


def check_container(name: str) -> str:
    if (not name or "/" in name or len(name.encode("utf-8", "surrogatepass")) > 255
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise errors.BadRequest(f"Invalid input received: container name {name!r} must be 1 to 255 bytes "
                                "without '/' or control characters.")
    return name


class Backups:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def find(self, s: Session, ctx: RequestContext, backup_id: str) -> Backup:
        row = s.get(Backup, backup_id) if len(backup_id) <= 36 else None
        if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
            raise not_found(backup_id)
        return row

    def get(self, ctx: RequestContext, backup_id: str) -> Backup:
        self.svc.enforce(ctx, "backup:get")
        with self.svc.session() as s:
            row = self.find(s, ctx, backup_id)
            s.expunge(row)
        return row

    def dependents(self, s: Session, ids: builtins.list[str]) -> set[str]:
        """Which of ``ids`` are the parent of an incremental backup (``has_dependent_backups``)."""
        if not ids:
            return set()
        return {p for p in s.scalars(select(Backup.parent_id).where(Backup.parent_id.in_(ids))) if p}

    # --- create ---------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, body: dict[str, Any]) -> Backup:
        self.svc.enforce(ctx, "backup:create")
        volume_id = str(body.get("volume_id") or "")
        incremental = truthy(body.get("incremental", False))
        force = truthy(body.get("force", False))
        container = body.get("container")
        az = body.get("availability_zone") or self.svc.settings.default_availability_zone
        if az not in self.svc.zone_names():
            raise errors.BadRequest(f"Invalid input received: Availability zone '{az}' is invalid.")

        def attempt() -> Backup:
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id) if volume_id else None
                if vol is None:
                    raise errors.NotFound(f"Volume {volume_id} could not be found.")
                snapshot_id, data_time = None, utcnow()
                if body.get("snapshot_id"):
                    snap = self.svc.snapshots.find(s, ctx, str(body["snapshot_id"]))
                    if snap.volume_id != vol.id:
                        raise errors.BadRequest(f"Invalid input received: snapshot {snap.id} is not a snapshot of "
                                                f"volume {vol.id}.")
                    if snap.status != "available":
                        raise errors.BadRequest(f"Invalid snapshot: Snapshot to be backed up must be available, but "
                                                f"the current status is \"{snap.status}\".")
                    snapshot_id, data_time = snap.id, snap.created_at
                elif vol.status not in ("available", "in-use") or (vol.status == "in-use" and not force):
                    hint = " or \"in-use\" with force" if vol.status == "in-use" else ""
                    raise invalid(f"Volume to be backed up must be available{hint}, but the current status is "
                                  f"\"{vol.status}\".")
                parent = None
                if incremental:
                    parent = s.scalars(select(Backup).where(Backup.volume_id == vol.id, Backup.status == "available")
                                       .order_by(Backup.data_timestamp.desc(), Backup.created_at.desc())).first()
                    if parent is None:
                        raise invalid_backup("No backups available to do an incremental backup.")
                    if parent.size != vol.size:
                        raise invalid_backup(f"the volume is {vol.size}GB now and its last backup "
                                             f"{parent.size}GB; take a full backup.")
                name = container if container is not None else (parent.container if parent else DEFAULT_CONTAINER)
                if parent is not None and name != parent.container:
                    raise invalid_backup(f"an incremental backup goes in its parent's container "
                                         f"{parent.container!r}.")
                check_container(name)
                self.svc.quotas.check(s, vol.project_id, backups=1, backup_gigabytes=vol.size)
                bid, now = str(uuid.uuid4()), utcnow()
                row = Backup(id=bid, project_id=vol.project_id, user_id=ctx.user_id, volume_id=vol.id,
                             snapshot_id=snapshot_id, parent_id=parent.id if parent else None,
                             name=body.get("name", body.get("display_name")),
                             description=body.get("description", body.get("display_description")),
                             status="creating", availability_zone=az, host=vol.host or self.svc.settings.volume_host,
                             container=name, prefix=object_prefix(vol.id, bid, az, now), size=vol.size,
                             object_count=0, is_incremental=parent is not None, meta=dict(body.get("metadata") or {}),
                             doc={"mode": "backup", "restore": None}, generation=1, data_timestamp=data_time,
                             created_at=now)
                if snapshot_id is None:
                    # The volume is read from now on: nothing else may change it until the backup ends.
                    desired.bump_or_lose(s, Volume, vol.id, vol.generation,
                                         {"status": "backing-up", "previous_status": vol.status,
                                          "updated_at": now}, guard={"status": vol.status})
                s.add(row)
                s.flush()
                s.expunge(row)
                return row

        row = desired.retry(attempt, what=f"Volume {volume_id}")
        self.svc.backup_controller.publish_soon(row.id)
        if row.snapshot_id is None:
            self.svc.controller.publish_soon("volume", row.volume_id)
        return row

    # --- list / update --------------------------------------------------------------------------

    def list(self, ctx: RequestContext, q: dict[str, str]) -> tuple[builtins.list[Backup], set[str], bool]:
        """Matching backups, which of them have dependents, and whether the page is full."""
        self.svc.enforce(ctx, "backup:get_all")
        all_tenants = ctx.is_admin and "all_tenants" in q and truthy(q.get("all_tenants") or "1")
        with self.svc.session() as s:
            stmt = select(Backup)
            if not all_tenants:
                stmt = stmt.where(Backup.project_id == ctx.project_id)
            elif q.get("project_id"):
                stmt = stmt.where(Backup.project_id == q["project_id"])
            name = q.get("name", q.get("display_name"))
            if name is not None:
                stmt = stmt.where(Backup.name == name)
            for key in ("status", "volume_id", "availability_zone"):
                if q.get(key):
                    stmt = stmt.where(getattr(Backup, key) == q[key])
            rows = builtins.list(s.scalars(stmt))
            if q.get("metadata"):
                want = parse_metadata_filter(q["metadata"])
                rows = [r for r in rows if all((r.meta or {}).get(k) == v for k, v in want.items())]
            pairs = [(k, d) for k, d in parse_sort(q) if k in SORT_KEYS]
            rows, more = page(sort_rows(rows, pairs), q, self.svc.settings.max_limit)
            parents = self.dependents(s, [r.id for r in rows])
            for r in rows:
                s.expunge(r)
        return rows, parents, more

    def has_dependents(self, backup_id: str) -> bool:
        with self.svc.session() as s:
            return bool(self.dependents(s, [backup_id]))

    def update(self, ctx: RequestContext, backup_id: str, body: dict[str, Any]) -> Backup:
        self.svc.enforce(ctx, "backup:update")
        with self.svc.session() as s:
            row = self.find(s, ctx, backup_id)
            for key in ("name", "description"):
                if key in body:
                    setattr(row, key, body[key])
            if "metadata" in body:
                row.meta = dict(body["metadata"] or {})
            row.updated_at = utcnow()
            s.flush()
            s.expunge(row)
        return row

    # --- delete ---------------------------------------------------------------------------------

    def delete(self, ctx: RequestContext, backup_id: str, force: bool = False) -> None:
        self.svc.enforce(ctx, "backup:delete")

        def attempt() -> None:
            with self.svc.session() as s:
                row = self.find(s, ctx, backup_id)
                if force:
                    self.svc.enforce(ctx, "volume_extension:backup_admin_actions:force_delete")
                    if row.status == "restoring":
                        raise invalid_backup("a backup being restored cannot be deleted.")
                elif row.status not in ("available", "error"):
                    raise invalid_backup(f"Backup status must be available or error (it is {row.status}).")
                if self.dependents(s, [row.id]):
                    raise invalid_backup("Incremental backups exist for this backup.")
                if row.status == "creating" and row.snapshot_id is None:
                    volume_back(s, row.volume_id, "backing-up")
                desired.bump_or_lose(s, Backup, row.id, row.generation, {"status": "deleting", "updated_at": utcnow()},
                                     guard={"status": row.status})

        desired.retry(attempt, what=f"Backup {backup_id}")
        self.svc.backup_controller.publish_soon(backup_id)

    # --- restore --------------------------------------------------------------------------------

    def restore(self, ctx: RequestContext, backup_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Start writing the backup into ``volume_id``, or into a new volume of its size; Cinder's answer."""
        self.svc.enforce(ctx, "backup:restore")
        row, vol = self._restore(ctx, backup_id, body.get("volume_id"), {"name": body.get("name")})
        return {"backup_id": row.id, "volume_id": vol.id, "volume_name": vol.name}

    def volume_from_backup(self, ctx: RequestContext, body: dict[str, Any]) -> Volume:
        """``POST /volumes`` with ``backup_id`` (3.47): a new volume (at least the backup's size) the backup is
        restored into."""
        self.svc.enforce(ctx, "volume:create")
        self.svc.enforce(ctx, "backup:restore")
        new = {k: body.get(k) for k in ("size", "description", "metadata", "volume_type", "availability_zone")}
        new["name"] = body.get("name", body.get("display_name"))
        return self._restore(ctx, str(body["backup_id"]), None, new)[1]

    def _restore(self, ctx: RequestContext, backup_id: str, target_id: Any,
                 new: dict[str, Any]) -> tuple[Backup, Volume]:
        def attempt() -> tuple[Backup, Volume]:
            with self.svc.session() as s:
                row = self.find(s, ctx, backup_id)
                if row.status != "available":
                    raise invalid_backup(f"Backup status must be available (it is {row.status}).")
                if target_id:
                    vol = self.svc.volumes.find(s, ctx, str(target_id))
                    if vol.size < row.size:
                        raise invalid(f"volume size {vol.size}GB is too small to restore backup of size "
                                      f"{row.size}GB.")
                    if vol.status != "available":
                        raise invalid(f"Volume to be restored to must be available (it is {vol.status}).")
                    desired.bump_or_lose(s, Volume, vol.id, vol.generation,
                                         {"status": "restoring-backup", "previous_status": vol.status,
                                          "updated_at": utcnow()}, guard={"status": "available"})
                else:
                    vol = self._new_volume(s, ctx, row, new)
                seq = int((row.doc.get("restore") or {}).get("seq") or 0) + 1
                desired.bump_or_lose(s, Backup, row.id, row.generation,
                                     {"status": "restoring", "fail_reason": None, "updated_at": utcnow(),
                                      "doc": {**row.doc, "restore": {"seq": seq, "volume_id": vol.id}}},
                                     guard={"status": "available"})
                s.expunge(row)
                s.expunge(vol)
                return row, vol

        row, vol = desired.retry(attempt, what=f"Backup {backup_id}")
        self.svc.backup_controller.publish_soon(row.id)
        self.svc.controller.publish_soon("volume", vol.id)
        return row, vol

    def _new_volume(self, s: Session, ctx: RequestContext, row: Backup, new: dict[str, Any]) -> Volume:
        """The volume a restore without ``volume_id`` writes into: blank, the backup's size (or more), in
        restoring-backup from the start (its file is made by the volume agent, then filled by the backup agent)."""
        size = parse_size(new["size"]) if new.get("size") is not None else row.size
        if size < row.size:
            raise errors.BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the "
                                    f"backup size {row.size}GB.")
        az = new.get("availability_zone") or row.availability_zone
        if az not in self.svc.zone_names():
            raise errors.BadRequest(f"Invalid input received: Availability zone '{az}' is invalid.")
        project_id = ctx.project_id or row.project_id
        self.svc.quotas.check(s, project_id, volumes=1, gigabytes=size)
        vtype = self.svc.types.resolve(s, ctx, new.get("volume_type"))
        vol = Volume(id=str(uuid.uuid4()), name=new.get("name") or f"restore_backup_{row.id}",
                     description=new.get("description"), project_id=project_id, user_id=ctx.user_id, size=size,
                     status="restoring-backup", availability_zone=az, volume_type_id=vtype.id,
                     host=self.svc.settings.volume_host, bootable=False, multiattach=False,
                     meta=dict(new.get("metadata") or {}), image_meta={}, admin_meta={},
                     doc={"source": {"type": "blank"}, "upload": None}, generation=1, created_at=utcnow())
        s.add(vol)
        s.flush()
        return vol

    # --- admin actions --------------------------------------------------------------------------

    def reset_status(self, ctx: RequestContext, backup_id: str, status: str) -> None:
        self.svc.enforce(ctx, "volume_extension:backup_admin_actions:reset_status")
        if status not in RESETTABLE:
            raise errors.BadRequest(f"Invalid input received: '{status}' is not a valid backup status to reset "
                                    "to (available or error).")
        with self.svc.session() as s:
            row = self.find(s, ctx, backup_id)
            if row.status == "creating" and row.snapshot_id is None:
                volume_back(s, row.volume_id, "backing-up")
            elif row.status == "restoring":
                target = (row.doc.get("restore") or {}).get("volume_id")
                if target:
                    volume_back(s, str(target), "restoring-backup", "error_restoring")
            row.status, row.updated_at = status, utcnow()

    def usage(self, s: Session, project_id: str) -> tuple[int, int]:
        """How many backups the project has, and their gigabytes (quotas ``backups``, ``backup_gigabytes``)."""
        sizes = builtins.list(s.scalars(select(Backup.size).where(Backup.project_id == project_id)))
        return len(sizes), sum(sizes)
