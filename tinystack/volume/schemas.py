"""JSON schemas for Cinder v3 request bodies. Cinder accepts numbers as strings in a few places (size,
new_size) and legacy ``display_*`` names; both are kept so old clients work."""

from __future__ import annotations

from typing import Any

NAME = {"type": ["string", "null"], "maxLength": 255}
DESCRIPTION = {"type": ["string", "null"], "maxLength": 65535}
UUID_REF = {"type": ["string", "null"], "maxLength": 36}
# Sizes: a positive integer, or a string of digits (python-cinderclient sends strings).
SIZE = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^\s*[0-9]+\s*$"}]}
METADATA = {"type": "object", "maxProperties": 512,
            "propertyNames": {"minLength": 1, "maxLength": 255},
            "additionalProperties": {"type": "string", "maxLength": 255}}
BOOL = {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false", "True", "False", "1", "0",
                                                                    "yes", "no", "on", "off"]}]}

VOLUME_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "volume": {
            "type": "object",
            "properties": {
                "size": {"anyOf": [SIZE, {"type": "null"}]}, "name": NAME, "description": DESCRIPTION,
                "display_name": NAME, "display_description": DESCRIPTION,
                "volume_type": {"type": ["string", "null"], "maxLength": 255},
                "availability_zone": {"type": ["string", "null"], "maxLength": 255},
                "metadata": {"anyOf": [METADATA, {"type": "null"}]},
                "snapshot_id": UUID_REF, "source_volid": UUID_REF, "imageRef": UUID_REF,
                "image_id": UUID_REF, "backup_id": UUID_REF, "consistencygroup_id": UUID_REF,
                "group_id": UUID_REF, "multiattach": BOOL,
            },
            "additionalProperties": True,
        },
        "OS-SCH-HNT:scheduler_hints": {"type": ["object", "null"]},
    },
    "required": ["volume"],
    "additionalProperties": False,
}

VOLUME_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {"volume": {"type": "object", "properties": {
        "name": NAME, "description": DESCRIPTION, "display_name": NAME, "display_description": DESCRIPTION,
        "metadata": METADATA}, "additionalProperties": False}},
    "required": ["volume"],
    "additionalProperties": False,
}

METADATA_BODY: dict[str, Any] = {
    "type": "object", "properties": {"metadata": METADATA}, "required": ["metadata"], "additionalProperties": False,
}
META_ITEM_BODY: dict[str, Any] = {
    "type": "object", "properties": {"meta": {**METADATA, "minProperties": 1, "maxProperties": 1}},
    "required": ["meta"], "additionalProperties": False,
}

SNAPSHOT_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {"snapshot": {"type": "object", "properties": {
        # null is Cinder's 404 for a volume that does not exist, not a schema error.
        "volume_id": {"type": ["string", "null"], "maxLength": 36}, "force": BOOL, "name": NAME,
        "description": DESCRIPTION, "display_name": NAME, "display_description": DESCRIPTION,
        "metadata": {"anyOf": [METADATA, {"type": "null"}]}},
        "required": ["volume_id"], "additionalProperties": False}},
    "required": ["snapshot"],
    "additionalProperties": False,
}

SNAPSHOT_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {"snapshot": {"type": "object", "properties": {
        "name": NAME, "description": DESCRIPTION, "display_name": NAME, "display_description": DESCRIPTION},
        "additionalProperties": False}},
    "required": ["snapshot"],
    "additionalProperties": False,
}

# One action per request body: {"os-extend": {...}}.
ACTIONS: dict[str, dict[str, Any]] = {
    "os-set_bootable": {"type": "object", "properties": {"bootable": BOOL}, "required": ["bootable"]},
    "os-update_readonly_flag": {"type": "object", "properties": {"readonly": BOOL}, "required": ["readonly"]},
    "os-extend": {"type": "object", "properties": {"new_size": SIZE}, "required": ["new_size"]},
    "os-reset_status": {"type": "object", "properties": {
        "status": {"type": "string", "maxLength": 255},
        "attach_status": {"type": "string", "enum": ["attached", "detached"]},
        "migration_status": {"type": ["string", "null"]}}},
    "os-force_delete": {"type": ["object", "null"]},
    "os-volume_upload_image": {"type": "object", "properties": {
        "image_name": {"type": "string", "minLength": 1, "maxLength": 255}, "force": BOOL,
        "disk_format": {"type": "string", "enum": ["raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx", "ploop"]},
        "container_format": {"type": "string", "enum": ["bare", "ovf"]},
        "visibility": {"type": "string", "enum": ["public", "private", "shared", "community"]},
        "protected": BOOL}, "required": ["image_name"]},
}

CONNECTOR = {"type": ["object", "null"], "maxProperties": 64}
MODE = {"type": "string", "enum": ["rw", "ro"]}
ACTIONS.update({
    "os-initialize_connection": {"type": "object", "properties": {"connector": {"type": "object"}},
                                 "required": ["connector"]},
    "os-terminate_connection": {"type": "object", "properties": {"connector": CONNECTOR}, "required": ["connector"]},
    "os-retype": {"type": "object", "properties": {
        "new_type": {"type": "string", "minLength": 1, "maxLength": 255},
        "migration_policy": {"type": ["string", "null"], "enum": ["never", "on-demand", None]}},
        "required": ["new_type"]},
    "os-migrate_volume": {"type": "object", "properties": {
        "host": {"type": ["string", "null"], "maxLength": 255}, "force_host_copy": BOOL, "lock_volume": BOOL,
        "cluster": {"type": ["string", "null"], "maxLength": 255}}},
    "os-migrate_volume_completion": {"type": "object", "properties": {"new_volume": {"type": "string",
                                                                                     "maxLength": 36},
                                                                      "error": BOOL}, "required": ["new_volume"]},
})

# The attachments API (3.27+): ``volume_uuid`` and ``instance_uuid``, a connector, and (3.54) the mode.
ATTACHMENT_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {"attachment": {"type": "object", "properties": {
        "volume_uuid": {"type": "string", "minLength": 1, "maxLength": 36}, "instance_uuid": UUID_REF,
        "connector": CONNECTOR, "mode": MODE}, "required": ["volume_uuid"], "additionalProperties": False}},
    "required": ["attachment"],
    "additionalProperties": False,
}
ATTACHMENT_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {"attachment": {"type": "object", "properties": {"connector": {"type": "object",
                                                                                 "maxProperties": 64}},
                                  "required": ["connector"], "additionalProperties": False}},
    "required": ["attachment"],
    "additionalProperties": False,
}

# Volume transfers: /os-volume-transfer and (3.55) /volume-transfers with ``no_snapshots``.
TRANSFER_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {"transfer": {"type": "object", "properties": {
        "volume_id": {"type": "string", "minLength": 1, "maxLength": 36}, "name": NAME, "no_snapshots": BOOL},
        "required": ["volume_id"], "additionalProperties": False}},
    "required": ["transfer"],
    "additionalProperties": False,
}
TRANSFER_ACCEPT: dict[str, Any] = {
    "type": "object",
    "properties": {"accept": {"type": "object", "properties": {
        "auth_key": {"type": "string", "minLength": 1, "maxLength": 255}},
        "required": ["auth_key"], "additionalProperties": False}},
    "required": ["accept"],
    "additionalProperties": False,
}

SNAPSHOT_ACTIONS: dict[str, dict[str, Any]] = {
    "os-reset_status": {"type": "object", "properties": {"status": {"type": "string", "maxLength": 255}},
                        "required": ["status"]},
    "os-force_delete": {"type": ["object", "null"]},
}

TYPE_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {"volume_type": {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": DESCRIPTION,
        "os-volume-type-access:is_public": BOOL, "is_public": BOOL,
        "extra_specs": METADATA}, "required": ["name"], "additionalProperties": False}},
    "required": ["volume_type"],
    "additionalProperties": False,
}

TYPE_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {"volume_type": {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": DESCRIPTION,
        "is_public": BOOL}, "additionalProperties": False}},
    "required": ["volume_type"],
    "additionalProperties": False,
}

EXTRA_SPECS_BODY: dict[str, Any] = {
    "type": "object", "properties": {"extra_specs": METADATA}, "required": ["extra_specs"],
    "additionalProperties": False,
}

QUOTA_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {"quota_set": {"type": "object", "additionalProperties": {
        "anyOf": [{"type": "integer", "minimum": -1}, {"type": "string", "pattern": r"^-?[0-9]+$"}]}}},
    "required": ["quota_set"],
    "additionalProperties": False,
}


def truthy(value: Any) -> bool:
    """Cinder's bool parsing for values the schemas above admitted."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")

BACKUP_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {"backup": {"type": "object", "properties": {
        "volume_id": {"type": "string", "minLength": 1, "maxLength": 36}, "container": {"type": ["string", "null"],
                                                                                        "maxLength": 255},
        "name": NAME, "description": DESCRIPTION, "display_name": NAME, "display_description": DESCRIPTION,
        "incremental": BOOL, "force": BOOL, "snapshot_id": UUID_REF,
        "metadata": {"anyOf": [METADATA, {"type": "null"}]},
        "availability_zone": {"type": ["string", "null"], "maxLength": 255}},
        "required": ["volume_id"], "additionalProperties": False}},
    "required": ["backup"],
    "additionalProperties": False,
}

BACKUP_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {"backup": {"type": "object", "properties": {
        "name": NAME, "description": DESCRIPTION, "metadata": {"anyOf": [METADATA, {"type": "null"}]}},
        "additionalProperties": False}},
    "required": ["backup"],
    "additionalProperties": False,
}

BACKUP_RESTORE: dict[str, Any] = {
    "type": "object",
    "properties": {"restore": {"type": ["object", "null"], "properties": {
        "volume_id": UUID_REF, "name": NAME}, "additionalProperties": False}},
    "required": ["restore"],
    "additionalProperties": False,
}

BACKUP_IMPORT: dict[str, Any] = {
    "type": "object",
    "properties": {"backup-record": {"type": "object", "properties": {
        "backup_service": {"type": "string", "minLength": 1, "maxLength": 255},
        "backup_url": {"type": "string", "minLength": 1, "maxLength": 65535}},
        "required": ["backup_service", "backup_url"], "additionalProperties": False}},
    "required": ["backup-record"],
    "additionalProperties": False,
}

BACKUP_ACTIONS: dict[str, dict[str, Any]] = {
    "os-reset_status": {"type": "object", "properties": {"status": {"type": "string", "maxLength": 255}},
                        "required": ["status"]},
    "os-force_delete": {"type": ["object", "null"]},
}
