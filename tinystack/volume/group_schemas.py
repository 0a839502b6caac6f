"""JSON schemas for the generic volume group request bodies: group types and specs (3.11), groups (3.13) and their
actions, group snapshots (3.14)."""

from __future__ import annotations

from typing import Any

from tinystack.volume.schemas import BOOL, DESCRIPTION, METADATA, NAME, UUID_REF

REQUIRED_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
ID_LIST = {"type": ["string", "null"], "maxLength": 65535}


def wrapped(key: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """``{key: {...}}`` with exactly the given properties."""
    inner: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        inner["required"] = required
    return {"type": "object", "properties": {key: inner}, "required": [key], "additionalProperties": False}


GROUP_TYPE_CREATE = wrapped("group_type", {"name": REQUIRED_NAME, "description": DESCRIPTION, "is_public": BOOL,
                                           "group_specs": METADATA}, ["name"])
GROUP_TYPE_UPDATE = wrapped("group_type", {"name": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                                           "description": DESCRIPTION, "is_public": BOOL})
GROUP_SPECS_BODY: dict[str, Any] = {
    "type": "object", "properties": {"group_specs": METADATA}, "required": ["group_specs"],
    "additionalProperties": False,
}
GROUP_SPEC_ITEM: dict[str, Any] = {"type": "object", "minProperties": 1, "maxProperties": 1,
                                   "additionalProperties": {"type": "string", "maxLength": 255}}

GROUP_CREATE = wrapped("group", {
    "name": NAME, "description": DESCRIPTION,
    "group_type": {"type": "string", "minLength": 1, "maxLength": 255},
    "volume_types": {"type": "array", "minItems": 1, "maxItems": 64,
                     "items": {"type": "string", "minLength": 1, "maxLength": 255}},
    "availability_zone": {"type": ["string", "null"], "maxLength": 255}}, ["group_type", "volume_types"])
GROUP_UPDATE = wrapped("group", {"name": NAME, "description": DESCRIPTION, "add_volumes": ID_LIST,
                                 "remove_volumes": ID_LIST})
GROUP_FROM_SRC = wrapped("create-from-src", {"name": NAME, "description": DESCRIPTION,
                                             "group_snapshot_id": UUID_REF, "source_group_id": UUID_REF})

STATUS = {"type": "object", "properties": {"status": {"type": "string", "minLength": 1, "maxLength": 255}},
          "required": ["status"], "additionalProperties": False}
# One action per body on /groups/{id}/action.
GROUP_ACTIONS: dict[str, dict[str, Any]] = {
    "delete": {"type": "object", "properties": {"delete-volumes": BOOL}, "additionalProperties": False},
    "reset_status": STATUS,
}

GROUP_SNAPSHOT_CREATE = wrapped("group_snapshot", {"group_id": {"type": "string", "minLength": 1, "maxLength": 36},
                                                   "name": NAME, "description": DESCRIPTION}, ["group_id"])
GROUP_SNAPSHOT_ACTIONS: dict[str, dict[str, Any]] = {"reset_status": STATUS}
