"""JSON schemas for the Keystone v3 domain, project, user and group request bodies (Keystone's own rules)."""

from __future__ import annotations

from typing import Any

BOOLEAN: dict[str, Any] = {"type": "boolean"}
ID: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-zA-Z0-9-]+$"}
NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"[\S]+"}
IDENTITY_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"[\S]+"}
DESCRIPTION: dict[str, Any] = {"type": ["string", "null"]}
# API-WG tag guideline: anything without "/" or ","; at most 80 distinct tags.
TAG: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^,/]*$"}
TAG_LIST: dict[str, Any] = {"type": "array", "items": TAG, "maxItems": 80, "uniqueItems": True}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


# Resource options: null removes an option, unknown options are refused.
PROJECT_OPTIONS: dict[str, Any] = {"type": "object", "additionalProperties": False,
                                   "properties": {"immutable": _nullable(BOOLEAN)}}
USER_OPTIONS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **{name: _nullable(BOOLEAN) for name in (
            "ignore_change_password_upon_first_use", "ignore_password_expiry", "ignore_lockout_failure_attempts",
            "lock_password", "ignore_user_inactivity", "multi_factor_auth_enabled")},
        "multi_factor_auth_rules": _nullable({"type": "array", "items": {
            "type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True}}),
    },
}


def _wrapped(key: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: body}}


_DOMAIN = {"name": NAME, "description": DESCRIPTION, "enabled": BOOLEAN, "tags": TAG_LIST, "options": PROJECT_OPTIONS}
DOMAIN_CREATE = _wrapped("domain", {"type": "object", "required": ["name"],
                                    "properties": {**_DOMAIN, "explicit_domain_id": ID}})
DOMAIN_UPDATE = _wrapped("domain", {"type": "object", "minProperties": 1, "properties": _DOMAIN})

_PROJECT = {"name": NAME, "description": DESCRIPTION, "enabled": BOOLEAN, "is_domain": BOOLEAN,
            "domain_id": _nullable(ID), "parent_id": _nullable(ID), "tags": TAG_LIST, "options": PROJECT_OPTIONS}
PROJECT_CREATE = _wrapped("project", {"type": "object", "required": ["name"], "properties": _PROJECT})
PROJECT_UPDATE = _wrapped("project", {"type": "object", "minProperties": 1, "properties": _PROJECT})
TAGS_UPDATE: dict[str, Any] = _wrapped("tags", TAG_LIST)

_USER = {"name": IDENTITY_NAME, "domain_id": ID, "default_project_id": _nullable(ID), "description": DESCRIPTION,
         "enabled": BOOLEAN, "password": {"type": ["string", "null"]}, "options": USER_OPTIONS}
USER_CREATE = _wrapped("user", {"type": "object", "required": ["name"], "properties": _USER})
USER_UPDATE = _wrapped("user", {"type": "object", "minProperties": 1, "properties": _USER})
PASSWORD_CHANGE = _wrapped("user", {
    "type": "object", "required": ["original_password", "password"], "additionalProperties": False,
    "properties": {"original_password": {"type": "string"}, "password": {"type": "string"}}})

_GROUP = {"name": IDENTITY_NAME, "domain_id": ID, "description": DESCRIPTION}
GROUP_CREATE = _wrapped("group", {"type": "object", "required": ["name"], "properties": _GROUP})
GROUP_UPDATE = _wrapped("group", {"type": "object", "minProperties": 1, "properties": _GROUP})
