"""Volume rules: create (blank, from a volume, a snapshot or an image), list with Cinder's filters, update,
delete and metadata; the actions that change a volume's bookkeeping or its file are in ``volume_actions``."""

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
from tinystack.volume.models import Attachment, Snapshot, Transfer, Volume, utcnow
from tinystack.volume.retype import refuse_if_migrating
from tinystack.volume.schemas import truthy
from tinystack.volume.volume_actions import VolumeActions, invalid, not_found

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

# Cinder's volume statuses; a list filter on anything else simply matches nothing.
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
# Image properties Glance owns; they are not copied into volume_image_metadata as custom properties.
_IMAGE_CORE = ("id", "name", "checksum", "container_format", "disk_format", "min_disk", "min_ram", "size")


def parse_size(raw: Any, name: str = "size") -> int:
    try:
        size = int(str(raw).strip())
    except (TypeError, ValueError):
        raise errors.BadRequest(f"Invalid input received: {name} must be an integer, got {raw!r}.") from None
    if size <= 0:
        raise errors.BadRequest(f"Invalid input received: {name} must be an integer and greater than 0.")
    return size


class Volumes(VolumeActions):
    """The volume rules; the actions are ``volume_actions``."""

    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def find(self, s: Session, ctx: RequestContext, volume_id: str) -> Volume:
        vol = s.get(Volume, volume_id) if len(volume_id) <= 36 else None
        if vol is None or not (ctx.is_admin or vol.project_id == ctx.project_id):
            raise not_found(volume_id)
        return vol

    def get(self, ctx: RequestContext, volume_id: str) -> Volume:
        self.svc.enforce(ctx, "volume:get")
        with self.svc.session() as s:
            vol = self.find(s, ctx, volume_id)
            s.expunge(vol)
        return vol

    # --- create ---------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, body: dict[str, Any]) -> Volume:
        self.svc.enforce(ctx, "volume:create")
        name = body.get("name", body.get("display_name"))
        description = body.get("description", body.get("display_description"))
        image_ref = body.get("imageRef") or body.get("image_id")
        sources = [k for k in ("snapshot_id", "source_volid", "backup_id") if body.get(k)] + (["image"] if image_ref else [])
        if len(sources) > 1:
            raise errors.BadRequest("Invalid input received: only one of snapshot_id, source_volid, imageRef and "
                                    "backup_id may be given.")
        if body.get("backup_id"):
            return self.svc.backups.volume_from_backup(ctx, body)  # 3.47: the backup restored into a new volume
        size = parse_size(body["size"]) if body.get("size") is not None else None
        az = body.get("availability_zone") or self.svc.settings.default_availability_zone
        if az not in self.svc.zone_names():
            raise errors.BadRequest(f"Invalid input received: Availability zone '{az}' is invalid.")
        image_meta: dict[str, str] = {}
        with self.svc.session() as s:
            vtype = self.svc.types.resolve(s, ctx, body.get("volume_type"))
            source: dict[str, Any] = {"type": "blank"}
            snapshot_id = source_volid = None
            bootable = False
            backend: str | None = None
            clone = bool(body.get("snapshot_id") or body.get("source_volid"))
            if body.get("snapshot_id"):
                snap = self.svc.snapshots.find(s, ctx, str(body["snapshot_id"]))
                if snap.status != "available":
                    raise errors.BadRequest(f"Invalid snapshot: Originating snapshot status must be one of "
                                            f"'available' values (it is {snap.status}).")
                size = size or snap.size
                if size < snap.size:
                    raise errors.BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than "
                                            f"the snapshot size {snap.size}GB. They must be >= original snapshot size.")
                parent = s.get(Volume, snap.volume_id)
                bootable = bool(parent and parent.bootable)
                image_meta = dict(parent.image_meta or {}) if parent else {}
                source, snapshot_id = {"type": "snapshot", "id": snap.id}, snap.id
                backend = parent.backend if parent is not None else None
            elif body.get("source_volid"):
                src = self.find(s, ctx, str(body["source_volid"]))
                if src.status not in ("available", "in-use"):
                    raise invalid(f"Source volume {src.id} status must be available or in-use (it is {src.status}).")
                size = size or src.size
                if size < src.size:
                    raise errors.BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than "
                                            f"the source volume size {src.size}GB.")
                refuse_if_migrating(src)
                bootable, image_meta = src.bootable, dict(src.image_meta or {})
                # The agent copies the source's file: on its backend, under its name_id once migrated.
                source, source_volid = {"type": "volume", "id": src.id, "name": src.name_id or src.id}, src.id
                backend = src.backend
            elif image_ref:
                image = self._image(ctx, str(image_ref))
                min_gb = max(int(image.get("min_disk") or 0), -(-int(image.get("virtual_size") or image["size"] or 0)
                                                                // 1024**3))
                size = size or max(min_gb, 1)
                if size < min_gb:
                    raise errors.BadRequest(f"Invalid input received: Image {image['id']} needs a volume of at least "
                                            f"{min_gb}GB; {size}GB was asked for.")
                bootable, image_meta = True, self._image_metadata(image)
                source = {"type": "image", "id": image["id"], "disk_format": image["disk_format"]}
            if size is None:
                raise errors.BadRequest("Invalid input received: size is required when no source is given.")
            group_id = self.svc.groups.admit(s, ctx, str(body["group_id"]), vtype.id) if body.get("group_id") else None
            self.svc.quotas.check(s, ctx.project_id or "", volumes=1, gigabytes=size)
            if clone:
                # A clone is made where its source is (as Cinder's drivers do); the type must allow that backend.
                backend = backend or self.svc.settings.backend_name
                if not self.svc.retyping.served(vtype, backend):
                    raise errors.BadRequest(f"Invalid input received: volume type {vtype.name} needs backend "
                                            f"{vtype.extra_specs.get('volume_backend_name')}, but the source is on "
                                            f"{backend}.")
            else:
                backend = self.svc.retyping.backend_for(vtype)
            vol = Volume(id=str(uuid.uuid4()), name=name, description=description, project_id=ctx.project_id or "",
                         user_id=ctx.user_id, size=size, status="creating", availability_zone=az,
                         volume_type_id=vtype.id, host=self.svc.settings.volume_host, bootable=bootable,
                         multiattach=truthy(body.get("multiattach", False)), snapshot_id=snapshot_id,
                         source_volid=source_volid, image_id=source.get("id") if source["type"] == "image" else None,
                         meta=dict(body.get("metadata") or {}), image_meta=image_meta, admin_meta={},
                         doc={"source": source, "upload": None}, generation=1, created_at=utcnow(),
                         backend=backend, group_id=group_id)
            if backend is None:
                # No enabled backend has the type's volume_backend_name: Cinder's scheduler fails the volume
                # (no host, so nothing is sent to an agent) and tells the user why.
                vol.status, vol.host = "error", None
                vol.fault = (f"No valid backend was found: no enabled backend is named "
                             f"{vtype.extra_specs.get('volume_backend_name')} (volume type {vtype.name}).")
                s.add(vol)
                s.flush()
                self.svc.messages.record(s, vol.project_id, "VOLUME", vol.id, "SCHEDULE_ALLOCATE_VOLUME",
                                         "NO_BACKEND_AVAILABLE", reason=vol.fault)
            s.add(vol)
            s.flush()
            s.expunge(vol)
        self.svc.controller.publish_soon("volume", vol.id)
        return vol

    def _image(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        try:
            image = self.svc.service("image").get(ctx, image_id)
        except errors.NotFound:
            raise errors.NotFound(f"Image {image_id} could not be found.") from None
        if image.status != "active":
            raise errors.BadRequest(f"Invalid image identifier or unable to access requested image: {image_id} "
                                    f"is {image.status}.")
        props = {p.name: p.value for p in image.properties}
        return {"id": image.id, "name": image.name, "disk_format": image.disk_format,
                "container_format": image.container_format, "size": image.size or 0,
                "virtual_size": image.virtual_size, "checksum": image.checksum, "min_disk": image.min_disk or 0,
                "min_ram": image.min_ram or 0, "properties": props}

    @staticmethod
    def _image_metadata(image: dict[str, Any]) -> dict[str, str]:
        """What Cinder keeps of the image as ``volume_image_metadata``: its core fields and custom properties."""
        out = {("image_id" if k == "id" else "image_name" if k == "name" else k): str(image[k])
               for k in _IMAGE_CORE if image.get(k) is not None}
        out.update({k: str(v) for k, v in (image.get("properties") or {}).items()})
        return out

    # --- list / update ------------------------------------------------------------------------------

    def list(self, ctx: RequestContext,
             q: dict[str, str]) -> tuple[builtins.list[Volume], dict[str, builtins.list[Attachment]], bool]:
        """Matching volumes, their attachments, and whether the page is full (a next link is due)."""
        self.svc.enforce(ctx, "volume:get_all")
        all_tenants = ctx.is_admin and "all_tenants" in q and truthy(q["all_tenants"] or "1")
        with self.svc.session() as s:
            stmt = select(Volume)
            if not all_tenants:
                stmt = stmt.where(Volume.project_id == (q.get("project_id") if ctx.is_admin and q.get("project_id")
                                                        else ctx.project_id))
            elif q.get("project_id"):
                stmt = stmt.where(Volume.project_id == q["project_id"])
            name = q.get("name", q.get("display_name"))
            if name is not None:
                stmt = stmt.where(Volume.name == name)
            for key in ("status", "availability_zone", "group_id"):
                if q.get(key):
                    stmt = stmt.where(getattr(Volume, key) == q[key])
            if q.get("bootable"):
                stmt = stmt.where(Volume.bootable.is_(truthy(q["bootable"])))
            rows = list(s.scalars(stmt))
            if q.get("metadata"):
                want = parse_metadata_filter(q["metadata"])
                rows = [v for v in rows if all((v.meta or {}).get(k) == val for k, val in want.items())]
            if q.get("volume_type"):
                vtype = self.svc.types.resolve(s, ctx, q["volume_type"])
                rows = [v for v in rows if v.volume_type_id == vtype.id]
            rows = sort_rows(rows, parse_sort(q))
            rows, more = page(rows, q, self.svc.settings.max_limit)
            atts = self.attachments(s, [v.id for v in rows])
            for v in rows:
                s.expunge(v)
        return rows, atts, more

    def attachments(self, s: Session, volume_ids: builtins.list[str]) -> dict[str, builtins.list[Attachment]]:
        out: dict[str, builtins.list[Attachment]] = {vid: [] for vid in volume_ids}
        if volume_ids:
            for a in s.scalars(select(Attachment).where(Attachment.volume_id.in_(volume_ids))
                               .order_by(Attachment.created_at)):
                out[a.volume_id].append(a)
                s.expunge(a)
        return out

    def update(self, ctx: RequestContext, volume_id: str, body: dict[str, Any]) -> Volume:
        self.svc.enforce(ctx, "volume:update")
        with self.svc.session() as s:
            vol = self.find(s, ctx, volume_id)
            if "name" in body or "display_name" in body:
                vol.name = body.get("name", body.get("display_name"))
            if "description" in body or "display_description" in body:
                vol.description = body.get("description", body.get("display_description"))
            if "metadata" in body:
                vol.meta = dict(body["metadata"])
            vol.updated_at = utcnow()
            s.flush()
            s.expunge(vol)
        return vol

    # --- metadata -------------------------------------------------------------------------------

    def metadata(self, ctx: RequestContext, volume_id: str, change: Callable[[dict[str, str]], dict[str, str]] | None
                 = None) -> dict[str, str]:
        """The volume's user metadata, after ``change`` (which gets a copy and returns the new dict) if given."""
        self.svc.enforce(ctx, "volume:update_volume_metadata" if change else "volume:get_volume_metadata")
        with self.svc.session() as s:
            vol = self.find(s, ctx, volume_id)
            if change is not None:
                # A change merges into what the row holds: read it under its lock (SQLite has one writer anyway),
                # so that two API processes adding different keys at once cannot both write their own copy.
                s.refresh(vol, with_for_update=True)
            meta = dict(vol.meta or {})
            if change is not None:
                if vol.status == "maintenance":
                    raise invalid(f"Volume {volume_id} is in maintenance.")
                meta = change(meta)
                vol.meta, vol.updated_at = meta, utcnow()
            return {**meta, **(vol.admin_meta or {})} if change is None else meta

    # --- delete ---------------------------------------------------------------------------------

    def delete(self, ctx: RequestContext, volume_id: str, force: bool = False, cascade: bool = False) -> None:
        self.svc.enforce(ctx, "volume:delete")

        def attempt() -> list[str]:
            with self.svc.session() as s:
                vol = self.find(s, ctx, volume_id)
                if force:
                    self.svc.enforce(ctx, "volume_extension:volume_admin_actions:force_delete")
                elif vol.status not in DELETABLE or vol.group_id is not None:
                    raise invalid("Volume status must be available or error or error_restoring or error_extending "
                                  "or error_managing and must not be migrating, attached, belong to a group, have "
                                  "snapshots or be disassociated from snapshots after volume transfer.")
                if not force:
                    refuse_if_migrating(vol)
                if s.scalar(select(Attachment.id).where(Attachment.volume_id == vol.id).limit(1)) and not force:
                    raise invalid("Volume must not be attached.")
                snaps = list(s.scalars(select(Snapshot).where(Snapshot.volume_id == vol.id)))
                if snaps and not cascade:
                    raise invalid(f"Volume still has {len(snaps)} dependent snapshots.")
                # The status checked above is part of the swap: a concurrent attach or extend makes this retry.
                desired.bump_or_lose(s, Volume, vol.id, vol.generation, {"status": "deleting", "updated_at": utcnow()},
                                     guard={"status": vol.status})
                for snap in snaps:
                    desired.bump_or_lose(s, Snapshot, snap.id, snap.generation, {"status": "deleting"})
                for a in s.scalars(select(Attachment).where(Attachment.volume_id == vol.id)):
                    s.delete(a)
                for t in s.scalars(select(Transfer).where(Transfer.volume_id == vol.id)):  # a forced delete
                    s.delete(t)
                if not vol.host:  # never placed (no backend for its type): no agent holds anything of it
                    s.delete(vol)
                return [snap.id for snap in snaps]

        snap_ids = desired.retry(attempt, what=f"Volume {volume_id}")
        for sid in snap_ids:
            self.svc.controller.publish_soon("snapshot", sid)
        self.svc.controller.publish_soon("volume", volume_id)
