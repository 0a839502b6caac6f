"""JSON schemas for application credential, credential, OS-EC2 and catalog (region, service, endpoint)
request bodies, following Keystone's own."""

from __future__ import annotations

from typing import Any

_name: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"}
_nullable_text: dict[str, Any] = {"type": ["string", "null"]}


def _wrap(key: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: body}}


# --- application credentials ---------------------------------------------------------------------

APP_CRED_CREATE = _wrap("application_credential", {
    "type": "object",
    "required": ["name"],
    "properties": {
        "id": {"type": "string"},
        "name": _name,
        "secret": _nullable_text,
        "description": _nullable_text,
        "expires_at": _nullable_text,
        "project_id": {"type": "string"},
        "system": _nullable_text,
        "unrestricted": {"type": ["boolean", "null"]},
        "roles": {"type": "array", "items": {
            "type": "object",
            "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 64}, "name": _name},
            "minProperties": 1, "maxProperties": 1, "additionalProperties": False}},
        "access_rules": {"type": "array", "items": {
            "type": "object",
            "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 64},
                           "service": {"type": "string", "minLength": 1, "maxLength": 64},
                           "path": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^/"},
                           "method": {"type": "string", "enum": ["HEAD", "GET", "POST", "PUT", "PATCH", "DELETE"]}},
            "anyOf": [{"required": ["id"]}, {"required": ["service", "path", "method"]}],
            "additionalProperties": False}},
    },
    "additionalProperties": False,
})

# --- credentials --------------------------------------------------------------------------------

_credential_properties: dict[str, Any] = {
    "blob": {"type": "string"},
    "project_id": _nullable_text,
    "type": {"type": "string", "minLength": 1, "maxLength": 255},
    "user_id": {"type": "string", "minLength": 1},
}

CREDENTIAL_CREATE = _wrap("credential", {
    "type": "object",
    "required": ["blob", "type", "user_id"],
    "properties": {"id": {"type": "string"}, **_credential_properties},
    # An ec2 credential is tied to a project: its tokens are scoped to it.
    "if": {"properties": {"type": {"const": "ec2"}}},
    "then": {"required": ["project_id"], "properties": {"project_id": {"type": "string"}}},
    "additionalProperties": True,
})

CREDENTIAL_UPDATE = _wrap("credential", {
    "type": "object",
    "properties": {"id": {"type": "string"}, **_credential_properties},
    "minProperties": 1,
    "additionalProperties": True,
})

EC2_CREATE: dict[str, Any] = {
    "type": "object",
    "required": ["tenant_id"],
    "properties": {"tenant_id": {"type": "string", "minLength": 1}},
}

# --- catalog ------------------------------------------------------------------------------------

_region_id: dict[str, Any] = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
_region_properties: dict[str, Any] = {
    "description": {"type": ["string", "null"], "maxLength": 255},
    "parent_region_id": _region_id,
}

REGION_CREATE = _wrap("region", {
    "type": "object",
    # An empty id asks for a generated one, as Keystone allows.
    "properties": {"id": {"type": "string", "maxLength": 255}, **_region_properties},
    "additionalProperties": True,
})

REGION_UPDATE = _wrap("region", {
    "type": "object",
    "properties": {"id": {"type": "string"}, **_region_properties},
    "minProperties": 1,
    "additionalProperties": True,
})

_service_properties: dict[str, Any] = {
    "enabled": {"type": "boolean"},
    "type": {"type": "string", "minLength": 1, "maxLength": 255},
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": _nullable_text,
}

SERVICE_CREATE = _wrap("service", {
    "type": "object",
    "required": ["type"],
    "properties": _service_properties,
    "additionalProperties": True,
})

SERVICE_UPDATE = _wrap("service", {
    "type": "object",
    "properties": {"id": {"type": "string"}, **_service_properties},
    "minProperties": 1,
    "additionalProperties": True,
})

_endpoint_properties: dict[str, Any] = {
    "enabled": {"type": "boolean"},
    "interface": {"type": "string", "enum": ["admin", "internal", "public"]},
    "region_id": _nullable_text,
    "region": _region_id,
    "service_id": {"type": "string"},
    "url": {"type": "string", "maxLength": 225, "pattern": "^[a-zA-Z0-9+.-]+:.+"},
}

ENDPOINT_CREATE = _wrap("endpoint", {
    "type": "object",
    "required": ["interface", "service_id", "url"],
    "properties": _endpoint_properties,
    "additionalProperties": True,
})

ENDPOINT_UPDATE = _wrap("endpoint", {
    "type": "object",
    "properties": {"id": {"type": "string"}, **_endpoint_properties},
    "minProperties": 1,
    "additionalProperties": True,
})
