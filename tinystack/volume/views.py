"""Resources → Cinder v3 JSON. Fields appear from the microversion that added them, and the extension fields
(``os-vol-*``) only where Cinder shows them: show and detailed lists, never create or update."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tinystack.core.web import Version
from tinystack.volume.models import (
    Attachment,
    Backup,
    Group,
    GroupSnapshot,
    GroupType,
    Message,
    Snapshot,
    Transfer,
    Volume,
    VolumeType,
)

V = Version


def when(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") if t is not None else None


def links(base: str, project_id: str, kind: str, rid: str) -> list[dict[str, str]]:
    root = base.rsplit("/v3", 1)[0]
    return [{"rel": "self", "href": f"{base}/{project_id}/{kind}/{rid}"},
            {"rel": "bookmark", "href": f"{root}/{project_id}/{kind}/{rid}"}]


def attachment(a: Attachment) -> dict[str, Any]:
    return {"server_id": a.instance_uuid, "attachment_id": a.id, "attached_at": when(a.attach_time),
            "host_name": a.attached_host, "volume_id": a.volume_id, "device": a.mountpoint, "id": a.volume_id}


def attachment_record(a: Attachment, connection_info: dict[str, Any] | None, *, detail: bool) -> dict[str, Any]:
    """The attachments API's (3.27) view; the summary list has the first four fields only."""
    out: dict[str, Any] = {"id": a.id, "volume_id": a.volume_id, "instance": a.instance_uuid,
                           "status": a.attach_status}
    if detail:
        out.update({"attached_at": when(a.attach_time), "detached_at": None, "attach_mode": a.attach_mode,
                    "connection_info": connection_info or {}})
    return out


def volume_summary(vol: Volume, base: str) -> dict[str, Any]:
    return {"id": vol.id, "name": vol.name, "links": links(base, vol.project_id, "volumes", vol.id)}


def volume(vol: Volume, attachments: list[Attachment], vtype: VolumeType | None, v: Version, *, base: str,
           admin: bool, extended: bool, backend: str) -> dict[str, Any]:
    """The detailed view. ``extended``: show and detailed lists, which carry the os-vol-* extension fields."""
    out: dict[str, Any] = {
        "id": vol.id, "name": vol.name, "description": vol.description, "status": vol.status, "size": vol.size,
        "availability_zone": vol.availability_zone, "created_at": when(vol.created_at),
        "updated_at": when(vol.updated_at),
        "attachments": [attachment(a) for a in attachments if a.attach_status == "attached"],
        "links": links(base, vol.project_id, "volumes", vol.id),
        "volume_type": vtype.name if vtype is not None else None, "snapshot_id": vol.snapshot_id,
        "source_volid": vol.source_volid, "metadata": {**(vol.meta or {}), **(vol.admin_meta or {})}, "user_id": vol.user_id,
        "bootable": "true" if vol.bootable else "false", "encrypted": False, "replication_status": None,
        "consistencygroup_id": None, "multiattach": vol.multiattach,
    }
    if admin:
        out["migration_status"] = vol.migration_status
    if v >= V(3, 13):
        out["group_id"] = vol.group_id
    if v >= V(3, 21) and admin:
        out["provider_id"] = None
    if v >= V(3, 48):
        out["shared_targets"] = False
        if admin:
            out["service_uuid"] = None
    if v >= V(3, 61) and admin:
        out["cluster_name"] = None
    if v >= V(3, 63):
        out["volume_type_id"] = vol.volume_type_id
    if v >= V(3, 64):
        out["encryption_key_id"] = None
    if v >= V(3, 65):
        out["consumes_quota"] = True
    if extended:
        out["os-vol-tenant-attr:tenant_id"] = vol.project_id
        if admin:
            where = vol.backend or backend  # None: the host's default backend
            out["os-vol-host-attr:host"] = f"{vol.host}@{where}#{where}" if vol.host else None
            out["os-vol-mig-status-attr:migstat"] = vol.migration_status
            out["os-vol-mig-status-attr:name_id"] = vol.name_id
        if vol.image_meta:
            out["volume_image_metadata"] = dict(vol.image_meta)
    return out


def snapshot(snap: Snapshot, v: Version, *, extended: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": snap.id, "status": snap.status, "size": snap.size, "created_at": when(snap.created_at),
        "updated_at": when(snap.updated_at), "name": snap.name, "description": snap.description,
        "volume_id": snap.volume_id, "metadata": dict(snap.meta or {}),
    }
    if v >= V(3, 14):
        out["group_snapshot_id"] = snap.group_snapshot_id
    if v >= V(3, 41):
        out["user_id"] = snap.user_id
    if v >= V(3, 65):
        out["consumes_quota"] = True
    if extended:
        out["os-extended-snapshot-attributes:progress"] = "100%" if snap.status == "available" else "0%"
        out["os-extended-snapshot-attributes:project_id"] = snap.project_id
    return out


def volume_type(t: VolumeType, *, show_specs: bool = True) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "description": t.description, "is_public": t.is_public,
            "os-volume-type-access:is_public": t.is_public, "qos_specs_id": None,
            "extra_specs": dict(t.extra_specs or {}) if show_specs else {}}


def transfer(t: Transfer, v: Version, *, base: str, kind: str, detail: bool) -> dict[str, Any]:
    """A volume transfer; ``kind``: the collection it was asked under (os-volume-transfer or volume-transfers)."""
    out: dict[str, Any] = {"id": t.id, "name": t.name, "volume_id": t.volume_id,
                           "links": links(base, t.project_id, kind, t.id)}
    if detail:
        out["created_at"] = when(t.created_at)
        if v >= V(3, 55):
            out["no_snapshots"] = t.no_snapshots
        if v >= V(3, 57):
            out.update({"source_project_id": t.project_id, "destination_project_id": None, "accepted": False})
    return out


def message(m: Message, text: str, *, base: str) -> dict[str, Any]:
    """A user message; ``text``: its ``<action>: <detail>`` line."""
    return {"id": m.id, "resource_type": m.resource_type, "resource_uuid": m.resource_uuid,
            "request_id": m.request_id, "message_level": m.message_level, "event_id": m.event_id,
            "created_at": when(m.created_at), "guaranteed_until": when(m.expires_at), "user_message": text,
            "links": links(base, m.project_id, "messages", m.id)}


def group_type(t: GroupType, *, show_specs: bool) -> dict[str, Any]:
    """``group_specs`` only for those allowed group:access_group_types_specs (admins), as in Cinder."""
    out: dict[str, Any] = {"id": t.id, "name": t.name, "description": t.description, "is_public": t.is_public}
    if show_specs:
        out["group_specs"] = dict(t.group_specs or {})
    return out


def group_summary(g: Group) -> dict[str, Any]:
    return {"id": g.id, "name": g.name}


def group(g: Group, v: Version, volumes: list[str] | None) -> dict[str, Any]:
    """The detailed view; ``volumes``: the member ids when the request asked for them (3.25 ``list_volume``)."""
    out: dict[str, Any] = {"id": g.id, "status": g.status, "availability_zone": g.availability_zone,
                           "created_at": when(g.created_at), "name": g.name, "description": g.description,
                           "group_type": g.group_type_id, "volume_types": list(g.volume_type_ids or [])}
    if v >= V(3, 14):
        out["group_snapshot_id"] = g.group_snapshot_id
        out["source_group_id"] = g.source_group_id
    if v >= V(3, 25) and volumes is not None:
        out["volumes"] = volumes
    if v >= V(3, 38):
        out["replication_status"] = "disabled"
    if v >= V(3, 58):
        out["project_id"] = g.project_id
    return out


def group_snapshot(gs: GroupSnapshot, v: Version, *, detail: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": gs.id, "name": gs.name, "group_type_id": gs.group_type_id}
    if detail:
        out.update({"group_id": gs.group_id, "status": gs.status, "created_at": when(gs.created_at),
                    "description": gs.description})
        if v >= V(3, 58):
            out["project_id"] = gs.project_id
    return out


def backup_summary(b: Backup, base: str) -> dict[str, Any]:
    return {"id": b.id, "name": b.name, "links": links(base, b.project_id, "backups", b.id)}


def backup(b: Backup, v: Version, *, base: str, dependents: bool, admin: bool) -> dict[str, Any]:
    """The detailed view (show and detailed lists); fields from the microversion that added them."""
    out: dict[str, Any] = {
        "id": b.id, "name": b.name, "description": b.description, "status": b.status, "fail_reason": b.fail_reason,
        "availability_zone": b.availability_zone, "volume_id": b.volume_id, "snapshot_id": b.snapshot_id,
        "size": b.size, "object_count": b.object_count, "container": b.container, "is_incremental": b.is_incremental,
        "has_dependent_backups": dependents, "created_at": when(b.created_at), "updated_at": when(b.updated_at),
        "data_timestamp": when(b.data_timestamp), "links": links(base, b.project_id, "backups", b.id),
    }
    if v >= V(3, 18) and admin:
        out["os-backup-project-attr:project_id"] = b.project_id
    if v >= V(3, 43):
        out["metadata"] = dict(b.meta or {})
    if v >= V(3, 56):
        out["user_id"] = b.user_id
    if v >= V(3, 64):
        out["encryption_key_id"] = None
    return out
