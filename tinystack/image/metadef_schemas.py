"""JSON schemas of the metadata definitions catalog: they check request bodies and are served, with the
read-only fields added, at ``/v2/schemas/metadefs/{name}``."""

from __future__ import annotations

import copy
from typing import Any

PROPERTY_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]
_STR80 = {"type": "string", "maxLength": 80}

# One property definition: a small JSON schema, as the catalog stores it.
PROPERTY: dict[str, Any] = {
    "type": "object",
    "required": ["title", "type"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": ["string", "null"], "enum": PROPERTY_TYPES},
        "readonly": {"type": "boolean"},
        "default": {},
        "enum": {"type": "array"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "pattern": {"type": "string", "format": "regex"},
        "minLength": {"type": "integer", "minimum": 0},
        "maxLength": {"type": "integer", "minimum": 0},
        "items": {"type": "object", "properties": {"type": {"type": "string", "enum": PROPERTY_TYPES[:-1]},
                                                    "enum": {"type": "array"}}},
        "uniqueItems": {"type": "boolean"},
        "minItems": {"type": "integer", "minimum": 0},
        "maxItems": {"type": "integer", "minimum": 0},
        "additionalItems": {"type": "boolean"},
    },
}

OBJECT: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": {"type": "string"},
        "required": {"type": "array", "items": {"type": "string"}},
        "properties": {"type": "object", "additionalProperties": PROPERTY},
    },
}

TAG: dict[str, Any] = {"type": "object", "required": ["name"], "additionalProperties": False,
                       "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}}}

TAGS: dict[str, Any] = {"type": "object", "required": ["tags"], "additionalProperties": False,
                        "properties": {"tags": {"type": "array", "items": TAG}}}

ASSOCIATION: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": {**_STR80, "minLength": 1}, "prefix": _STR80, "properties_target": _STR80},
}

NAMESPACE: dict[str, Any] = {
    "type": "object",
    "required": ["namespace"],
    "additionalProperties": False,
    "properties": {
        "namespace": {**_STR80, "minLength": 1},
        "display_name": _STR80,
        "description": {"type": "string", "maxLength": 500},
        "visibility": {"type": "string", "enum": ["public", "private"]},
        "protected": {"type": "boolean"},
        "owner": {"type": "string", "maxLength": 255},
        "resource_type_associations": {"type": "array", "items": ASSOCIATION},
        "properties": {"type": "object", "additionalProperties": PROPERTY},
        "objects": {"type": "array", "items": OBJECT},
        "tags": {"type": "array", "items": TAG},
    },
}

# Fields a client may send back unchanged (a whole shown resource) and that are ignored.
READ_ONLY = ("created_at", "updated_at", "self", "schema")
_STAMPS = {"created_at": {"type": "string", "readOnly": True, "format": "date-time"},
           "updated_at": {"type": "string", "readOnly": True, "format": "date-time"}}


def _document(name: str, body: dict[str, Any], *extra: str) -> dict[str, Any]:
    doc = copy.deepcopy(body)
    doc["name"] = name
    doc["properties"].update({k: v for k, v in _STAMPS.items() if k in extra})
    for key in ("self", "schema"):
        if key in extra:
            doc["properties"][key] = {"type": "string", "readOnly": True}
    return doc


def _plural(name: str, item: dict[str, Any], key: str) -> dict[str, Any]:
    return {"name": name, "properties": {key: {"type": "array", "items": item}, "first": {"type": "string"},
                                         "next": {"type": "string"}, "schema": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


def documents() -> dict[str, dict[str, Any]]:
    """Every served schema by name."""
    namespace = _document("namespace", NAMESPACE, "created_at", "updated_at", "self", "schema")
    obj = _document("object", OBJECT, "created_at", "updated_at", "self", "schema")
    prop = _document("property", PROPERTY)
    tag = _document("tag", TAG, "created_at", "updated_at")
    association = _document("resource_type_association", ASSOCIATION, "created_at", "updated_at")
    return {
        "namespace": namespace, "namespaces": _plural("namespaces", namespace, "namespaces"),
        "object": obj, "objects": _plural("objects", obj, "objects"),
        "property": prop,
        "properties": {"name": "properties", "properties": {"properties": {"type": "object",
                                                                           "additionalProperties": prop}}},
        "tag": tag, "tags": _plural("tags", tag, "tags"),
        "resource_type": association,
        "resource_types": _plural("resource_type_associations", association, "resource_type_associations"),
    }
