"""The attachments API (Cinder 3.27+, what Nova calls): reserve, connect, complete and delete attachments on
the same rows compute's own attaches write (attachments.py), so both views of a volume agree; and the legacy
``os-initialize_connection``/``os-terminate_connection`` actions, which hand out the same connection info."""

from __future__ import annotations

import builtins
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

# Volume states a connection may be handed out in (Cinder refuses the others).
CONNECTABLE = ("available", "reserved", "attaching", "in-use", "detaching", "downloading")


def not_found(attachment_id: str) -> errors.NotFound:
    return errors.NotFound(f"Volume attachment could not be found with filter: attachment_id = {attachment_id}.")


class AttachmentRecords:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def connection_info(self, vol: Volume, mode: str, att: Attachment | None = None) -> dict[str, Any]:
        """Cinder's ``connection_info``: with the volume node exporting volumes (``[volume] nbd_host``), the
        attachment's NBD export (address, secret export name, TLS-PSK identity and key), as an iSCSI backend
        hands out its target and CHAP secret; else the volume's raw file on the storage host (``device_path``
        is the name os-brick's local connector reads). The file's path is in both: the volume node's own
        guests open it directly."""
        path = str(self.svc.volume_path(vol.id, vol.backend, vol.name_id))
        data = {"path": path, "device_path": path, "format": "raw", "access_mode": mode, "volume_id": vol.id}
        nbd = self.svc.exports.nbd(att.export if att is not None else None)
        if nbd is None:
            return {"driver_volume_type": "file", "data": data}
        return {"driver_volume_type": "nbd", "data": {**nbd, **data, "volume_host": vol.host}}

    def find(self, s: Session, ctx: RequestContext, attachment_id: str) -> tuple[Attachment, Volume]:
        att = s.get(Attachment, attachment_id) if len(attachment_id) <= 36 else None
        vol = s.get(Volume, att.volume_id) if att is not None else None
        if att is None or vol is None or not (ctx.is_admin or vol.project_id == ctx.project_id):
            raise not_found(attachment_id)
        return att, vol

    def view_info(self, att: Attachment, vol: Volume) -> dict[str, Any] | None:
        """The connection info an attachment shows: once a connector was given (or compute attached it)."""
        if att.connector is None and att.attach_status == "reserved":
            return None
        return self.connection_info(vol, att.attach_mode, att)

    # --- reads ------------------------------------------------------------------------------------

    def get(self, ctx: RequestContext, attachment_id: str) -> tuple[Attachment, dict[str, Any] | None]:
        self.svc.enforce(ctx, "volume:get")
        with self.svc.session() as s:
            att, vol = self.find(s, ctx, attachment_id)
            info = self.view_info(att, vol)
            s.expunge(att)
        return att, info

    def list(self, ctx: RequestContext, query: dict[str, str]) -> list[tuple[Attachment, dict[str, Any] | None]]:
        self.svc.enforce(ctx, "volume:get_all")
        stmt = select(Attachment, Volume).join(Volume, Volume.id == Attachment.volume_id)
        all_projects = query.get("all_tenants", "").lower() in ("1", "true", "yes")
        if all_projects:
            self.svc.enforce(ctx, "volume:get_all_tenants")
            if query.get("project_id"):
                stmt = stmt.where(Volume.project_id == query["project_id"])
        else:
            stmt = stmt.where(Volume.project_id == ctx.project_id)
        if query.get("volume_id"):
            stmt = stmt.where(Attachment.volume_id == query["volume_id"])
        if query.get("instance_id"):
            stmt = stmt.where(Attachment.instance_uuid == query["instance_id"])
        if query.get("status"):
            stmt = stmt.where(Attachment.attach_status == query["status"])
        limit = self._limit(query.get("limit"))
        with self.svc.session() as s:
            rows = [(a, self.view_info(a, v)) for a, v in s.execute(stmt.order_by(Attachment.created_at,
                                                                                   Attachment.id))]
            for a, _ in rows:
                s.expunge(a)
        marker = query.get("marker")
        if marker:
            ids = [a.id for a, _ in rows]
            if marker not in ids:
                raise errors.BadRequest(f"Invalid input received: marker {marker} could not be found.")
            rows = rows[ids.index(marker) + 1:]
        return rows[:limit]

    def _limit(self, raw: str | None) -> int:
        if raw is None:
            return self.svc.settings.max_limit
        if not raw.isdigit():
            raise errors.BadRequest("Invalid input received: limit must be a non-negative integer.")
        return min(int(raw), self.svc.settings.max_limit)

    # --- writes -----------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, volume_id: str, instance_uuid: str | None,
               connector: dict[str, Any] | None, mode: str | None) -> tuple[Attachment, dict[str, Any] | None]:
        """A reservation (no connector: ``reserved``) or a connection (``attaching``, with connection info)."""
        self.svc.enforce(ctx, "volume:attachment_create")
        with self.svc.session() as s:
            vol = self.svc.volumes.find(s, ctx, volume_id)
            if vol.status not in ("available", "reserved", "in-use") or (
                    vol.status != "available" and not vol.multiattach):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be available or in-use "
                                        f"with multiattach to attach, but the status is {vol.status}.")
            refuse_if_migrating(vol)
            if instance_uuid and s.scalar(select(Attachment.id).where(Attachment.volume_id == vol.id,
                                                                      Attachment.instance_uuid == instance_uuid)):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} is already attached to "
                                        f"{instance_uuid}.")
            mode = mode or ("ro" if vol.read_only else "rw")
            if vol.read_only and mode == "rw":
                raise errors.BadRequest(f"Invalid attaching mode 'rw' for volume {volume_id}: it is read-only.")
            att_id = str(uuid.uuid4())
            att = Attachment(id=att_id, volume_id=vol.id, instance_uuid=instance_uuid,
                             attach_status="reserved", attach_mode=mode, created_at=utcnow(),
                             export=self.svc.exports.new(att_id))
            s.add(att)
            if vol.status == "available":
                vol.previous_status, vol.status = vol.status, "reserved"
            if connector:
                self._connect(att, vol, connector)
            vol.updated_at = utcnow()
            s.flush()
            if att.export:
                self.svc.exports.changed(s, vol.id)
            info = self.view_info(att, vol)
            s.expunge(att)
        if att.export:
            self.svc.exports.publish(vol.id)
        return att, info

    @staticmethod
    def _connect(att: Attachment, vol: Volume, connector: dict[str, Any]) -> None:
        att.connector = dict(connector)
        att.attached_host = connector.get("host") or att.attached_host
        att.mountpoint = connector.get("mountpoint") or att.mountpoint
        if att.attach_status == "reserved":
            att.attach_status = "attaching"
        if vol.status == "reserved":
            vol.status = "attaching"

    def update(self, ctx: RequestContext, attachment_id: str,
               connector: dict[str, Any]) -> tuple[Attachment, dict[str, Any] | None]:
        self.svc.enforce(ctx, "volume:attachment_update")
        with self.svc.session() as s:
            att, vol = self.find(s, ctx, attachment_id)
            if att.attach_status == "detaching":
                raise errors.BadRequest(f"Invalid volume attachment: attachment {attachment_id} is detaching.")
            self._connect(att, vol, connector)
            vol.updated_at = utcnow()
            s.flush()  # before expunge, which would drop the attachment's pending changes
            info = self.view_info(att, vol)
            s.expunge(att)
        return att, info

    def complete(self, ctx: RequestContext, attachment_id: str) -> None:
        self.svc.enforce(ctx, "volume:attachment_complete")
        with self.svc.session() as s:
            att, _ = self.find(s, ctx, attachment_id)
            if att.attach_status == "detaching":
                raise errors.BadRequest(f"Invalid volume attachment: attachment {attachment_id} is detaching.")
        self.svc.attachments.attach_complete(attachment_id)

    def delete(self, ctx: RequestContext, attachment_id: str) -> builtins.list[Attachment]:
        """Remove the attachment; one a server holds is detached through compute (the guest loses the disk
        as with ``server remove volume``), so compute never keeps a disk block storage forgot. Returns the
        volume's attachments left."""
        self.svc.enforce(ctx, "volume:attachment_delete")
        with self.svc.session() as s:
            att, vol = self.find(s, ctx, attachment_id)
            volume_id = vol.id
        compute = self.svc.services.get("compute")
        if compute is None or not compute.detach_attachment(ctx, attachment_id):
            with self.svc.session() as s:
                att, vol = self.find(s, ctx, attachment_id)
                exported = self.svc.attachments.forget(s, att)
                if vol.status in ("reserved", "attaching", "in-use"):
                    vol.status = "detaching"  # so that _settle recomputes it from what is left
                self.svc.attachments.settle(s, vol)
            if exported:
                self.svc.exports.publish(volume_id)
        with self.svc.session() as s:
            return self.svc.volumes.attachments(s, [volume_id])[volume_id]

    # --- legacy connection actions -----------------------------------------------------------------

    def initialize_connection(self, ctx: RequestContext, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        """The volume's connection for ``connector``. With NBD exports, the export belongs to an attachment: the
        pending or live one this connector's host (or instance) already has, else a new pending (``attaching``)
        one, which ``os-attach`` completes and ``os-terminate_connection`` or ``os-unreserve`` removes."""
        self.svc.enforce(ctx, "volume_extension:volume_actions:initialize_connection")
        created = False
        with self.svc.session() as s:
            vol = self.svc.volumes.find(s, ctx, volume_id)
            if vol.status not in CONNECTABLE:
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be available or in-use to "
                                        f"initialize a connection, but the status is {vol.status}.")
            mode = "ro" if vol.read_only else str(connector.get("mode") or "rw")
            if not self.svc.exports.host:
                return self.connection_info(vol, mode)
            att = self.connected(s, vol.id, connector, ("reserved", "attaching", "attached"))
            if att is None:
                att_id = str(uuid.uuid4())
                instance = connector.get("instance")
                att = Attachment(id=att_id, volume_id=vol.id, instance_uuid=str(instance) if instance else None,
                                 attached_host=str(connector.get("host") or "") or None, connector=dict(connector),
                                 attach_status="attaching", attach_mode=mode, created_at=utcnow(),
                                 export=self.svc.exports.new(att_id))
                s.add(att)
                self.svc.exports.changed(s, vol.id)
                created = True
            info = self.connection_info(vol, att.attach_mode, att)
        if created:
            self.svc.exports.publish(volume_id)
        return info

    @staticmethod
    def connected(s: Session, volume_id: str, connector: dict[str, Any],
                   states: tuple[str, ...]) -> Attachment | None:
        """The volume's exported attachment in one of ``states`` made for this connector's host or instance."""
        host, instance = connector.get("host"), connector.get("instance")
        for a in s.scalars(select(Attachment).where(Attachment.volume_id == volume_id)
                           .order_by(Attachment.created_at, Attachment.id)):
            # Not in SQL: the JSON column keeps Python's None as JSON null, which IS NOT NULL matches.
            if not a.export or a.attach_status not in states:
                continue
            if (host and host in (a.attached_host, (a.connector or {}).get("host"))) or (
                    instance and instance == a.instance_uuid):
                return a
        return None

    def terminate_connection(self, ctx: RequestContext, volume_id: str,
                             connector: dict[str, Any] | None = None) -> None:
        """End the connection ``os-initialize_connection`` made for this connector and never attached (its
        export goes); an attached one ends with ``os-detach``. The file backend exports nothing."""
        self.svc.enforce(ctx, "volume_extension:volume_actions:terminate_connection")
        exported = False
        with self.svc.session() as s:
            vol = self.svc.volumes.find(s, ctx, volume_id)
            att = self.connected(s, vol.id, connector or {}, ("reserved", "attaching"))
            if att is not None and att.connector is not None:
                exported = self.svc.attachments.forget(s, att)
                self.svc.attachments.settle(s, vol)
        if exported:
            self.svc.exports.publish(volume_id)
