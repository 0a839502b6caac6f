"""Export and import of backup records (admin): everything needed to find a backup's objects again, as the
opaque ``backup_url`` Cinder's clients carry between clouds (base64 of a JSON document), and its import as a new
row that the backup agent checks against object storage before it becomes available."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.jsonio import validate
from tinystack.volume.backups import check_container
from tinystack.volume.models import Backup, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

# The driver a record was made by: an import names it, and a record of another driver is refused.
BACKUP_SERVICE = "tinystack.volume.drivers.backup_chunked"
RECORD_VERSION = 1
_FIELDS = ("id", "volume_id", "snapshot_id", "parent_id", "name", "description", "container", "prefix", "size",
           "object_count", "availability_zone", "is_incremental")


def _stamp(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def encode(row: Backup) -> str:
    doc: dict[str, Any] = {"version": RECORD_VERSION, **{k: getattr(row, k) for k in _FIELDS},
                           "metadata": dict(row.meta or {}), "data_timestamp": _stamp(row.data_timestamp),
                           "created_at": _stamp(row.created_at)}
    return base64.b64encode(json.dumps(doc, sort_keys=True).encode()).decode()


_ID = {"type": "string", "minLength": 1, "maxLength": 36}
_TEXT = {"type": ["string", "null"], "maxLength": 255}
RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "version": {"const": RECORD_VERSION}, "id": _ID, "volume_id": _ID,
        "snapshot_id": {"anyOf": [_ID, {"type": "null"}]}, "parent_id": {"anyOf": [_ID, {"type": "null"}]},
        "name": _TEXT, "description": {"type": ["string", "null"], "maxLength": 65535},
        "container": {"type": "string", "minLength": 1, "maxLength": 255},
        "prefix": {"type": "string", "minLength": 1, "maxLength": 512},
        "size": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        "object_count": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        "availability_zone": _TEXT, "is_incremental": {"type": "boolean"},
        "metadata": {"type": "object", "maxProperties": 512, "additionalProperties": {"type": "string",
                                                                                      "maxLength": 255}},
        "data_timestamp": _TEXT, "created_at": _TEXT,
    },
    "required": ["version", "id", "volume_id", "container", "prefix", "size"],
}


def decode(url: str) -> dict[str, Any]:
    """The record in ``url``; anything this cloud did not export (or that was altered out of shape) is a 400."""
    bad = "Invalid input received: the backup_url is not a backup record this cloud exported"
    try:
        doc = json.loads(base64.b64decode(url.encode(), validate=True))
    except (binascii.Error, ValueError, UnicodeError):
        raise errors.BadRequest(f"{bad}.") from None
    try:
        validate(doc, RECORD_SCHEMA)
    except errors.BadRequest as exc:
        raise errors.BadRequest(f"{bad}: {exc}") from None
    check_container(doc["container"])
    return dict(doc)


def _when(raw: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(raw))
    except ValueError:
        return utcnow()


class BackupRecords:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def export(self, ctx: RequestContext, backup_id: str) -> dict[str, str]:
        self.svc.enforce(ctx, "backup:export-import")
        with self.svc.session() as s:
            row = self.svc.backups.find(s, ctx, backup_id)
            if row.status != "available":
                raise errors.BadRequest(f"Invalid backup: Backup status must be available and not {row.status}.")
            return {"backup_service": BACKUP_SERVICE, "backup_url": encode(row)}

    def import_(self, ctx: RequestContext, service: str, url: str) -> Backup:
        self.svc.enforce(ctx, "backup:export-import")
        if service != BACKUP_SERVICE:
            raise errors.BadRequest(f"Invalid input received: backup service {service!r} is not this cloud's "
                                    f"({BACKUP_SERVICE}).")
        doc = decode(url)
        with self.svc.session() as s:
            if s.get(Backup, doc["id"]) is not None:
                raise errors.BadRequest("Invalid backup: Backup already exists in database.")
            parent = doc.get("parent_id")
            meta: dict[str, Any] = doc.get("metadata") or {}
            row = Backup(id=doc["id"], project_id=ctx.project_id or "", user_id=ctx.user_id,
                         volume_id=doc["volume_id"], snapshot_id=doc.get("snapshot_id"),
                         parent_id=parent if isinstance(parent, str) and s.get(Backup, parent) is not None else None,
                         name=doc.get("name"), description=doc.get("description"), status="creating",
                         availability_zone=str(doc.get("availability_zone") or self.svc.settings.default_availability_zone),
                         host=self.svc.settings.volume_host, container=doc["container"], prefix=doc["prefix"],
                         size=doc["size"], object_count=int(doc.get("object_count") or 0),
                         is_incremental=bool(doc.get("is_incremental")),
                         meta={str(k): str(v) for k, v in meta.items()}, doc={"mode": "import", "restore": None},
                         generation=1, data_timestamp=_when(doc.get("data_timestamp")), created_at=utcnow())
            s.add(row)
            s.flush()
            s.expunge(row)
        self.svc.backup_controller.publish_soon(row.id)
        return row
