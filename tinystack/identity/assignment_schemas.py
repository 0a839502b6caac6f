"""JSON schemas for the role request bodies (Keystone's, from keystone.assignment.schema)."""

from __future__ import annotations

from typing import Any

_options: dict[str, Any] = {
    "type": "object",
    "properties": {"immutable": {"type": ["boolean", "null"]}},
    "additionalProperties": False,
}

_role_properties: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"},
    "description": {"type": ["string", "null"]},
    "domain_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64},
    "options": _options,
}

ROLE_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"type": "object", "properties": _role_properties, "required": ["name"], "additionalProperties": True},
    },
    "required": ["role"],
    "additionalProperties": False,
}

ROLE_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"type": "object", "properties": _role_properties, "minProperties": 1, "additionalProperties": True},
    },
    "required": ["role"],
    "additionalProperties": False,
}
