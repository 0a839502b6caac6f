"""Volume actions that change a volume's bookkeeping or its file: bootable and read-only flags, extend (and
compute's ``volume-extended`` event once an in-use volume has grown), reset-status and upload to an image."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.compute.interface import COMPUTE
from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.core.service import acting_for
from tinystack.volume.models import Attachment, Volume, utcnow
from tinystack.volume.retype import refuse_if_migrating
from tinystack.volume.schemas import truthy

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

log = logging.getLogger(__name__)


def not_found(volume_id: str) -> errors.NotFound:
    return errors.NotFound(f"Volume {volume_id} could not be found.")


def invalid(message: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid volume: {message}")


class VolumeActions:
    """Mixin of ``Volumes``, which sets these attributes."""

    svc: VolumeService
    find: Callable[[Session, RequestContext, str], Volume]

    def set_bootable(self, ctx: RequestContext, volume_id: str, bootable: bool) -> None:
        self.svc.enforce(ctx, "volume:update")
        with self.svc.session() as s:
            vol = self.find(s, ctx, volume_id)
            vol.bootable, vol.updated_at = bootable, utcnow()

    def set_readonly(self, ctx: RequestContext, volume_id: str, readonly: bool) -> None:
        self.svc.enforce(ctx, "volume:update_readonly_flag")
        with self.svc.session() as s:
            vol = self.find(s, ctx, volume_id)
            if vol.status != "available":
                raise invalid(f"Volume status must be available to update readonly flag (it is {vol.status}).")
            vol.read_only = readonly
            vol.admin_meta = {**(vol.admin_meta or {}), "readonly": str(readonly)}
            vol.updated_at = utcnow()

    def extend(self, ctx: RequestContext, volume_id: str, new_size: int, version_allows_in_use: bool) -> None:
        self.svc.enforce(ctx, "volume:extend")

        def attempt() -> None:
            with self.svc.session() as s:
                vol = self.find(s, ctx, volume_id)
                allowed = ("available", "in-use") if version_allows_in_use else ("available",)
                if vol.status not in allowed:
                    raise invalid(f"Volume status must be {' or '.join(allowed)} to extend (it is {vol.status}).")
                refuse_if_migrating(vol)
                if new_size <= vol.size:
                    raise errors.BadRequest(f"Invalid input received: New size for extend must be greater than "
                                            f"current size. (current: {vol.size}, extended: {new_size}).")
                self.svc.quotas.check(s, vol.project_id, gigabytes=new_size - vol.size)
                desired.bump_or_lose(s, Volume, vol.id, vol.generation, {
                    "previous_status": vol.status, "status": "extending", "size": new_size, "updated_at": utcnow()},
                    guard={"status": vol.status, "size": vol.size})

        desired.retry(attempt, what=f"Volume {volume_id}")
        self.svc.controller.publish_soon("volume", volume_id)

    async def notify_extended(self, volume_id: str) -> None:
        """An in-use volume finished growing (its file and its exports have the new size): tell compute, as Cinder
        tells Nova, with a ``volume-extended`` event for each server that has it, so their guests' disks grow."""
        if not self.svc.has(COMPUTE):
            return
        with self.svc.session() as s:
            vol = s.get(Volume, volume_id)
            if vol is None:
                return
            owner = (vol.user_id, vol.project_id)
            servers = sorted({a.instance_uuid for a in s.scalars(select(Attachment).where(
                Attachment.volume_id == volume_id, Attachment.attach_status == "attached")) if a.instance_uuid})
        if not servers:
            return
        events = [{"name": "volume-extended", "server_uuid": sid, "tag": volume_id} for sid in servers]
        try:
            code, answered = await self.svc.service(COMPUTE).external_events(
                acting_for(*owner), f"req-{uuid.uuid4()}", events)
        except errors.NotFound:
            log.warning("volume %s: compute knows none of the servers %s", volume_id, ", ".join(servers))
            return
        if code != 200:
            log.warning("volume %s: volume-extended events not all accepted: %s", volume_id,
                        [(e["server_uuid"], e["code"]) for e in answered])

    def reset_status(self, ctx: RequestContext, volume_id: str, body: dict[str, Any]) -> None:
        self.svc.enforce(ctx, "volume_extension:volume_admin_actions:reset_status")
        migstat = str(body["migration_status"] or "none").lower() if "migration_status" in body else None
        if migstat is not None and migstat not in ("none", "error", "success"):
            raise errors.BadRequest(f"Invalid input received: migration_status must be none, error or success, "
                                    f"not {body['migration_status']!r}.")
        ended = False
        with self.svc.session() as s:
            vol = self.find(s, ctx, volume_id)
            if body.get("status"):
                vol.status = body["status"]
            exported = False
            if body.get("attach_status") == "detached":
                for a in list(s.scalars(select(Attachment).where(Attachment.volume_id == vol.id))):
                    exported = self.svc.attachments.forget(s, a) or exported
            vol.updated_at = utcnow()
            if migstat is not None:
                # An operator ends a stuck migration: the volume stays where it is and the copy is retired.
                migration = (vol.doc or {}).get("migration")
                values: dict[str, Any] = {"migration_status": None if migstat == "none" else migstat}
                if migration:
                    there = {"backend": migration["backend"], "name": migration["name_id"]}
                    values["doc"] = {**vol.doc, "migration": None,
                                     "retired": [*(vol.doc.get("retired") or [])[-4:], there]}
                    ended = True
                desired.bump_or_lose(s, Volume, vol.id, vol.generation, values)
        if ended:
            self.svc.controller.publish_soon("volume", volume_id)
        if exported:
            self.svc.exports.publish(volume_id)

    def upload(self, ctx: RequestContext, volume_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``os-volume_upload_image``: a new image now (queued), its data from the volume agent."""
        self.svc.enforce(ctx, "volume:copy_volume_to_image")
        visibility = body.get("visibility", "private")
        if visibility == "public" or truthy(body.get("protected", False)):
            self.svc.enforce(ctx, "volume_extension:volume_actions:upload_public")
        disk_format = body.get("disk_format", "raw")
        container_format = body.get("container_format", "bare")
        with self.svc.session() as s:
            vol = self.find(s, ctx, volume_id)
            if vol.status not in ("available", "in-use") or (vol.status == "in-use" and not truthy(body.get("force", False))):
                raise invalid(f"Volume {volume_id} status must be available or in-use with force (it is {vol.status}).")
            refuse_if_migrating(vol)
            props = {k: v for k, v in (vol.image_meta or {}).items() if k not in
                     ("image_id", "image_name", "checksum", "container_format", "disk_format", "size", "min_disk",
                      "min_ram", "kernel_id", "ramdisk_id") and not k.startswith("os_glance")}
        image = self.svc.service("image").create(ctx, {
            "name": body["image_name"], "disk_format": disk_format, "container_format": container_format,
            "visibility": visibility, "protected": truthy(body.get("protected", False)), **props})

        def attempt() -> dict[str, Any]:
            with self.svc.session() as s:
                vol = self.find(s, ctx, volume_id)
                seq = int((vol.doc.get("upload") or {}).get("seq") or 0) + 1
                desired.bump_or_lose(s, Volume, vol.id, vol.generation, {
                    "doc": {**vol.doc, "upload": {"seq": seq, "image_id": image.id, "disk_format": disk_format}},
                    "previous_status": vol.status, "status": "uploading", "updated_at": utcnow()})
                return {"id": vol.id, "updated_at": vol.updated_at, "status": "uploading",
                        "display_description": vol.description, "size": vol.size,
                        "volume_type": self.svc.types.resolve(s, ctx, vol.volume_type_id).name if vol.volume_type_id
                        else None, "image_id": image.id, "container_format": container_format,
                        "disk_format": disk_format, "image_name": body["image_name"]}

        out = desired.retry(attempt, what=f"Volume {volume_id}")
        self.svc.controller.publish_soon("volume", volume_id)
        return out
