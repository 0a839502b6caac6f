"""User messages (Cinder's messages API, 3.3+): asynchronous failures a user would otherwise only see as an
``error`` status (a volume that could not be made, an attach that failed) are recorded with Cinder's event ids
(``VOLUME_<resource type>_<action id>_<detail id>``) and kept for ``[volume] message_ttl`` seconds."""

from __future__ import annotations

import builtins
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.core import errors, log
from tinystack.core.auth import RequestContext
from tinystack.volume.models import Message, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

# Cinder's action and detail ids with the text users see ("<action>: <detail>").
ACTIONS: dict[str, tuple[str, str]] = {
    "SCHEDULE_ALLOCATE_VOLUME": ("001", "schedule allocate volume"),
    "ATTACH_VOLUME": ("002", "attach volume"),
    "COPY_VOLUME_TO_IMAGE": ("003", "copy volume to image"),
    "UPDATE_ATTACHMENT": ("004", "update attachment"),
    "COPY_IMAGE_TO_VOLUME": ("005", "copy image to volume"),
    "EXTEND_VOLUME": ("007", "extend volume"),
    "CREATE_VOLUME_FROM_BACKEND": ("008", "create volume from backend storage"),
    "SNAPSHOT_CREATE": ("009", "create snapshot"),
    "SNAPSHOT_DELETE": ("010", "delete snapshot"),
}
DETAILS: dict[str, tuple[str, str]] = {
    "UNKNOWN_ERROR": ("001", "An unknown error occurred."),
    "NO_BACKEND_AVAILABLE": ("003", "Could not find any available weighted backend."),
    "FAILED_TO_UPLOAD_VOLUME": ("004", "Failed to upload volume to image at backend."),
    "DRIVER_FAILED_EXTEND": ("010", "Volume Driver failed to extend volume."),
    "DRIVER_FAILED_CREATE": ("012", "Driver failed to create the volume."),
    "SNAPSHOT_CREATE_ERROR": ("013", "Snapshot failed to create."),
    "SNAPSHOT_DELETE_ERROR": ("016", "Snapshot failed to delete."),
    "ATTACH_ERROR": ("021", "Failed to attach volume."),
    "DETACH_ERROR": ("022", "Failed to detach volume."),
}
FILTERS = ("event_id", "resource_type", "resource_uuid", "message_level", "request_id")


def user_message(event_id: str) -> str:
    """``<action>: <detail>`` from the event id's last two parts."""
    _, action_id, detail_id = event_id.rsplit("_", 2)
    action = next((text for aid, text in ACTIONS.values() if aid == action_id), "unknown action")
    detail = next((text for did, text in DETAILS.values() if did == detail_id), DETAILS["UNKNOWN_ERROR"][1])
    return f"{action}: {detail}"


def not_found(message_id: str) -> errors.NotFound:
    return errors.NotFound(f"Message {message_id} could not be found.")


class Messages:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def record(self, s: Session, project_id: str, resource_type: str, resource_uuid: str | None, action: str,
               detail: str, reason: str | None = None, request_id: str | None = None) -> None:
        """A new ERROR message in ``s``'s transaction (so it exists exactly when the failure does)."""
        rid = request_id or log.request_id.get()
        now = utcnow()
        s.add(Message(id=str(uuid.uuid4()), project_id=project_id,
                      request_id=rid if rid and rid != "-" else f"req-{uuid.uuid4()}",
                      resource_type=resource_type, resource_uuid=resource_uuid,
                      event_id=f"VOLUME_{resource_type}_{ACTIONS[action][0]}_{DETAILS[detail][0]}",
                      message_level="ERROR", detail=(reason or "")[:1000] or None, created_at=now,
                      expires_at=now + timedelta(seconds=self.svc.settings.message_ttl)))

    def _find(self, s: Session, ctx: RequestContext, message_id: str) -> Message:
        m = s.get(Message, message_id) if len(message_id) <= 36 else None
        if m is None or m.expires_at <= utcnow() or not (ctx.is_admin or m.project_id == ctx.project_id):
            raise not_found(message_id)
        return m

    def get(self, ctx: RequestContext, message_id: str) -> Message:
        self.svc.enforce(ctx, "message:get")
        with self.svc.session() as s:
            m = self._find(s, ctx, message_id)
            s.expunge(m)
        return m

    def list(self, ctx: RequestContext, query: dict[str, str]) -> builtins.list[Message]:
        self.svc.enforce(ctx, "message:get_all")
        unknown = set(query) - {*FILTERS, "limit", "marker", "offset", "sort", "sort_key", "sort_dir", "all_tenants",
                                "project_id"}
        if unknown:
            raise errors.BadRequest(f"Invalid input received: Invalid filters {', '.join(sorted(unknown))} are "
                                    f"found in query options.")
        stmt = select(Message).where(Message.expires_at > utcnow())
        if query.get("all_tenants", "").lower() in ("1", "true", "yes"):
            self.svc.enforce(ctx, "volume:get_all_tenants")
        elif ctx.is_admin and query.get("project_id"):
            stmt = stmt.where(Message.project_id == query["project_id"])
        else:
            stmt = stmt.where(Message.project_id == ctx.project_id)
        for key in FILTERS:
            if query.get(key):
                stmt = stmt.where(getattr(Message, key) == query[key])
        limit, offset = query.get("limit"), query.get("offset", "0")
        if (limit is not None and not limit.isdigit()) or not offset.isdigit():
            raise errors.BadRequest("Invalid input received: limit and offset must be non-negative integers.")
        with self.svc.session() as s:
            s.execute(delete(Message).where(Message.expires_at <= utcnow()))  # expired ones go as Cinder's reaper
            rows = list(s.scalars(stmt.order_by(Message.created_at.desc(), Message.id)))
            for m in rows:
                s.expunge(m)
        marker = query.get("marker")
        if marker:
            ids = [m.id for m in rows]
            if marker not in ids:
                raise errors.BadRequest(f"Invalid input received: marker {marker} could not be found.")
            rows = rows[ids.index(marker) + 1:]
        rows = rows[int(offset):]
        return rows[:int(limit)] if limit is not None else rows

    def delete(self, ctx: RequestContext, message_id: str) -> None:
        self.svc.enforce(ctx, "message:delete")
        with self.svc.session() as s:
            s.delete(self._find(s, ctx, message_id))
