"""JSON schema for OS-TRUST request bodies, following Keystone's."""

from __future__ import annotations

from typing import Any

_id: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}
_role: dict[str, Any] = {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
                         "properties": {"id": _id, "name": {"type": "string", "minLength": 1, "maxLength": 255}}}

TRUST_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["trust"],
    "properties": {"trust": {
        "type": "object",
        "required": ["trustor_user_id", "trustee_user_id", "impersonation"],
        "properties": {
            "trustor_user_id": _id,
            "trustee_user_id": _id,
            "impersonation": {"type": "boolean"},
            "project_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64},
            "roles": {"type": "array", "items": _role},
            "expires_at": {"type": ["string", "null"]},
            "remaining_uses": {"type": ["integer", "null"], "minimum": 1},
            "allow_redelegation": {"type": ["boolean", "null"]},
            "redelegation_count": {"type": ["integer", "null"], "minimum": 0},
        },
    }},
}
