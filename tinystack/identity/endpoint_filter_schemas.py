"""JSON schemas for OS-EP-FILTER endpoint group bodies, following Keystone's."""

from __future__ import annotations

from typing import Any

_filters: dict[str, Any] = {
    "type": "object", "minProperties": 1, "additionalProperties": False,
    "properties": {"interface": {"type": "string", "enum": ["public", "internal", "admin"]},
                   "service_id": {"type": "string", "minLength": 1, "maxLength": 64},
                   "region_id": {"type": "string", "minLength": 1, "maxLength": 255}}}
_properties: dict[str, Any] = {"name": {"type": "string", "minLength": 1, "maxLength": 255},
                               "description": {"type": ["string", "null"]}, "filters": _filters}

GROUP_CREATE: dict[str, Any] = {"type": "object", "required": ["endpoint_group"], "properties": {"endpoint_group": {
    "type": "object", "required": ["name", "filters"], "additionalProperties": False, "properties": _properties}}}

GROUP_UPDATE: dict[str, Any] = {"type": "object", "required": ["endpoint_group"], "properties": {"endpoint_group": {
    "type": "object", "minProperties": 1, "additionalProperties": False, "properties": _properties}}}
