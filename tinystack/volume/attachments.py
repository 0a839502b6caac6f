"""Attachment bookkeeping: what compute asks of block storage when it plugs a volume into a server
(docs/contracts.md "Volumes on servers"), and Cinder's legacy attach actions that record the same thing."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.models import Attachment, Volume, utcnow
from tinystack.volume.retype import refuse_if_migrating

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService


class Attachments:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def connection(self, vol: Volume, att: Attachment) -> dict[str, Any]:
        """What compute puts in the instance document: the file (which the volume node's own guests open) and,
        when the volume node exports volumes, the attachment's NBD export (which every other node opens)."""
        nbd = self.svc.exports.nbd(att.export)
        path = self.svc.volume_path(vol.id, vol.backend, vol.name_id)
        return {"driver_volume_type": "nbd" if nbd else "file", "path": str(path), "format": "raw",
                "volume_host": vol.host, **({"nbd": nbd} if nbd else {})}

    def reserve(self, ctx: RequestContext, volume_id: str, instance_id: str | None, mountpoint: str | None,
                host: str | None = None) -> dict[str, Any]:
        with self.svc.session() as s:
            vol = self.svc.volumes.find(s, ctx, volume_id)
            if vol.status != "available" and not (vol.multiattach and vol.status == "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be available to reserve, "
                                        f"but the status is {vol.status}.")
            refuse_if_migrating(vol)
            if instance_id and s.scalar(select(Attachment.id).where(Attachment.volume_id == vol.id,
                                                                    Attachment.instance_uuid == instance_id)):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} is already attached to {instance_id}.")
            att_id = str(uuid.uuid4())
            att = Attachment(id=att_id, volume_id=vol.id, instance_uuid=instance_id, attached_host=host,
                             mountpoint=mountpoint, attach_status="attaching",
                             attach_mode="ro" if vol.read_only else "rw", created_at=utcnow(),
                             export=self.svc.exports.new(att_id))
            s.add(att)
            vol.previous_status, vol.status, vol.updated_at = vol.status, "attaching", utcnow()
            if att.export:
                self.svc.exports.changed(s, vol.id)
            reserved = {"attachment_id": att.id, "volume_id": vol.id, "size_gb": vol.size,
                        "read_only": vol.read_only, "connection": self.connection(vol, att)}
        self.svc.exports.publish(volume_id)
        return reserved

    def _attachment(self, s: Session, attachment_id: str) -> tuple[Attachment, Volume]:
        att = s.get(Attachment, attachment_id)
        vol = s.get(Volume, att.volume_id) if att is not None else None
        if att is None or vol is None:
            raise errors.NotFound(f"Volume attachment {attachment_id} could not be found.")
        return att, vol

    def attach_complete(self, attachment_id: str, mountpoint: str | None = None) -> None:
        with self.svc.session() as s:
            att, vol = self._attachment(s, attachment_id)
            att.attach_status, att.attach_time = "attached", att.attach_time or utcnow()
            if mountpoint:
                att.mountpoint = mountpoint
            vol.status, vol.previous_status, vol.updated_at = "in-use", None, utcnow()
            vol.admin_meta = {**(vol.admin_meta or {}), "attached_mode": att.attach_mode}

    def attach_failed(self, attachment_id: str, reason: str) -> None:
        with self.svc.session() as s:
            try:
                att, vol = self._attachment(s, attachment_id)
            except errors.NotFound:
                return
            exported = self.forget(s, att)
            self.settle(s, vol)
            self.svc.messages.record(s, vol.project_id, "VOLUME", vol.id, "ATTACH_VOLUME", "ATTACH_ERROR",
                                     reason=reason)
        if exported:
            self.svc.exports.publish(vol.id)

    def begin_detach(self, attachment_id: str) -> None:
        with self.svc.session() as s:
            att, vol = self._attachment(s, attachment_id)
            att.attach_status = "detaching"
            vol.status, vol.updated_at = "detaching", utcnow()

    def roll_detaching(self, attachment_id: str) -> None:
        """The detach did not happen (the guest kept the disk): the attachment stands and the volume is in-use."""
        with self.svc.session() as s:
            att, vol = self._attachment(s, attachment_id)
            att.attach_status = "attached"
            self.settle(s, vol)
            self.svc.messages.record(s, vol.project_id, "VOLUME", vol.id, "UPDATE_ATTACHMENT", "DETACH_ERROR")

    def detach_complete(self, attachment_id: str) -> None:
        with self.svc.session() as s:
            try:
                att, vol = self._attachment(s, attachment_id)
            except errors.NotFound:
                return  # already gone: at-least-once callers
            exported = self.forget(s, att)
            self.settle(s, vol)
        if exported:
            self.svc.exports.publish(vol.id)

    def forget(self, s: Session, att: Attachment) -> bool:
        """Delete the attachment row; True when it had an export (the volume's document changed: publish it
        after the commit)."""
        exported = att.export is not None
        s.delete(att)
        s.flush()
        if exported:
            self.svc.exports.changed(s, att.volume_id)
        return exported

    def settle(self, s: Session, vol: Volume) -> None:
        """in-use while any attachment is attached, else attaching or reserved while one is (the attachments
        API's pending ones), else available; attached_mode goes with the last one."""
        left = list(s.scalars(select(Attachment).where(Attachment.volume_id == vol.id)))
        if vol.status in ("attaching", "detaching", "in-use", "reserved"):
            states = {a.attach_status for a in left}
            vol.status = next((v for k, v in (("attached", "in-use"), ("attaching", "attaching"),
                                              ("reserved", "reserved")) if k in states), "available")
        if not left:
            vol.admin_meta = {k: v for k, v in (vol.admin_meta or {}).items() if k != "attached_mode"}
        vol.updated_at = utcnow()

    # --- Cinder's legacy actions (os-reserve, os-attach, ...): bookkeeping only, as in Cinder -------------

    def legacy(self, ctx: RequestContext, volume_id: str, action: str, body: dict[str, Any]) -> None:
        self.svc.enforce(ctx, "volume:update")
        if action == "os-reserve":
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id)
                if vol.status != "available":
                    raise errors.BadRequest(f"Invalid volume: Volume status must be available to reserve, but the "
                                            f"status is {vol.status}.")
                refuse_if_migrating(vol)
                vol.previous_status, vol.status = vol.status, "attaching"
        elif action == "os-unreserve":
            exported = False
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id)
                if vol.status == "attaching":
                    pending = [a for a in s.scalars(select(Attachment).where(Attachment.volume_id == vol.id))
                               if a.attach_status == "attaching"]
                    for a in pending:
                        exported = self.forget(s, a) or exported
                    s.flush()
                    self.settle(s, vol)
            if exported:
                self.svc.exports.publish(volume_id)
        elif action == "os-attach":
            instance_id = body.get("instance_uuid")
            exported = False
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id)
                if vol.status not in ("available", "attaching") and not vol.multiattach:
                    raise errors.BadRequest(f"Invalid volume: Volume status must be available or attaching (it is "
                                            f"{vol.status}).")
                refuse_if_migrating(vol)
                mode = body.get("mode", "rw")
                if vol.read_only and mode != "ro":
                    raise errors.BadRequest("Invalid volume: Volume is read-only; attach it with mode 'ro'.")
                # The connection os-initialize_connection made for this host (with its export) becomes the
                # attachment; without one, a new row records it.
                made = self.svc.attachment_records.connected(
                    s, vol.id, {"host": body.get("host_name"), "instance": instance_id}, ("reserved", "attaching"))
                if made is not None and made.connector is not None:
                    made.instance_uuid = instance_id or made.instance_uuid
                    made.mountpoint = body.get("mountpoint") or made.mountpoint
                    if made.attach_mode != mode:  # the export's read-only flag follows
                        made.attach_mode = mode
                        self.svc.exports.changed(s, vol.id)
                        exported = True
                    made.attach_status, made.attach_time = "attached", utcnow()
                else:
                    s.add(Attachment(id=str(uuid.uuid4()), volume_id=vol.id, instance_uuid=instance_id,
                                     attached_host=body.get("host_name"), mountpoint=body.get("mountpoint"),
                                     attach_status="attached", attach_mode=mode, attach_time=utcnow(),
                                     created_at=utcnow()))
                vol.status, vol.updated_at = "in-use", utcnow()
                vol.admin_meta = {**(vol.admin_meta or {}), "attached_mode": mode}
            if exported:
                self.svc.exports.publish(volume_id)
        elif action == "os-detach":
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id)
                rows = list(s.scalars(select(Attachment).where(Attachment.volume_id == vol.id)))
                wanted = body.get("attachment_id")
                if wanted:
                    rows = [a for a in rows if a.id == wanted]
                if not rows:
                    raise errors.BadRequest(f"Invalid volume: Volume {volume_id} is not attached.")
                exported = False
                for a in rows if wanted or len(rows) == 1 else rows[:1]:
                    exported = self.forget(s, a) or exported
                vol.status = "detaching"
                self.settle(s, vol)
            if exported:
                self.svc.exports.publish(volume_id)
        elif action == "os-begin_detaching":
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id)
                if vol.status != "in-use":
                    raise errors.BadRequest(f"Invalid volume: Volume status must be in-use (it is {vol.status}).")
                vol.status = "detaching"
        elif action == "os-roll_detaching":
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id)
                if vol.status == "detaching":
                    vol.status = "in-use"
