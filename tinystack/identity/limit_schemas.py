"""JSON schemas for unified limits request bodies, following Keystone's."""

from __future__ import annotations

from typing import Any

_id: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}
_nullable_id: dict[str, Any] = {"type": ["string", "null"], "minLength": 1, "maxLength": 255}
_count: dict[str, Any] = {"type": "integer", "minimum": -1, "maximum": 2147483647}
_resource: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255}
_description: dict[str, Any] = {"type": ["string", "null"]}


def _many(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "array", "minItems": 1, "items": item}}}


def _one(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "properties": {key: item}}


REGISTERED_CREATE = _many("registered_limits", {
    "type": "object", "required": ["service_id", "resource_name", "default_limit"], "additionalProperties": False,
    "properties": {"service_id": _id, "region_id": _nullable_id, "resource_name": _resource,
                   "default_limit": _count, "description": _description}})

REGISTERED_UPDATE = _one("registered_limit", {
    "type": "object", "minProperties": 1, "additionalProperties": False,
    "properties": {"service_id": _id, "region_id": _nullable_id, "resource_name": _resource,
                   "default_limit": _count, "description": _description}})

LIMITS_CREATE = _many("limits", {
    "type": "object", "required": ["service_id", "resource_name", "resource_limit"], "additionalProperties": False,
    "properties": {"project_id": _nullable_id, "domain_id": _nullable_id, "service_id": _id,
                   "region_id": _nullable_id, "resource_name": _resource, "resource_limit": _count,
                   "description": _description}})

LIMIT_UPDATE = _one("limit", {
    "type": "object", "minProperties": 1, "additionalProperties": False,
    "properties": {"resource_limit": _count, "description": _description}})
