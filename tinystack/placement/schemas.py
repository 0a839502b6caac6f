"""JSON schemas for placement request bodies, by microversion where the body changed."""

from __future__ import annotations

from typing import Any

MAX_INT = 2**31 - 1
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
NULLABLE_UUID: dict[str, Any] = {"anyOf": [UUID, {"type": "null"}]}
RC_NAME: dict[str, Any] = {"type": "string", "pattern": "^[A-Z0-9_]+$", "maxLength": 255}
GENERATION: dict[str, Any] = {"type": "integer", "minimum": 0}

PROVIDER_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}, "uuid": UUID},
    "required": ["name"], "additionalProperties": False,
}
PROVIDER_CREATE_1_14: dict[str, Any] = {**PROVIDER_CREATE, "properties": {
    **PROVIDER_CREATE["properties"], "parent_provider_uuid": NULLABLE_UUID}}
PROVIDER_UPDATE: dict[str, Any] = {
    "type": "object", "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}},
    "required": ["name"], "additionalProperties": False,
}
PROVIDER_UPDATE_1_14: dict[str, Any] = {**PROVIDER_UPDATE, "properties": {
    **PROVIDER_UPDATE["properties"], "parent_provider_uuid": NULLABLE_UUID}}

INVENTORY_FIELDS: dict[str, Any] = {
    "total": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "reserved": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
    "min_unit": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "max_unit": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "step_size": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "allocation_ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 3.40282e38},
}
INVENTORY: dict[str, Any] = {"type": "object", "properties": INVENTORY_FIELDS, "required": ["total"],
                             "additionalProperties": False}
INVENTORIES_PUT: dict[str, Any] = {
    "type": "object",
    "properties": {"resource_provider_generation": GENERATION,
                   "inventories": {"type": "object", "propertyNames": RC_NAME, "additionalProperties": INVENTORY}},
    "required": ["resource_provider_generation", "inventories"], "additionalProperties": False,
}
INVENTORY_POST: dict[str, Any] = {
    "type": "object",
    "properties": {**INVENTORY_FIELDS, "resource_class": RC_NAME, "resource_provider_generation": GENERATION},
    "required": ["total", "resource_class"], "additionalProperties": False,
}
INVENTORY_PUT: dict[str, Any] = {
    "type": "object", "properties": {**INVENTORY_FIELDS, "resource_provider_generation": GENERATION},
    "required": ["total", "resource_provider_generation"], "additionalProperties": False,
}

TRAITS_PUT: dict[str, Any] = {
    "type": "object",
    "properties": {"traits": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255},
                              "uniqueItems": True},
                   "resource_provider_generation": GENERATION},
    "required": ["traits", "resource_provider_generation"], "additionalProperties": False,
}
AGGREGATE_LIST: dict[str, Any] = {"type": "array", "items": UUID, "uniqueItems": True}
AGGREGATES_PUT_1_19: dict[str, Any] = {
    "type": "object", "properties": {"aggregates": AGGREGATE_LIST, "resource_provider_generation": GENERATION},
    "required": ["aggregates", "resource_provider_generation"], "additionalProperties": False,
}

RESOURCES: dict[str, Any] = {"type": "object", "minProperties": 1, "propertyNames": RC_NAME,
                             "additionalProperties": {"type": "integer", "minimum": 1, "maximum": MAX_INT}}
PROJECT: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255}


def allocations_put(version: tuple[int, int]) -> dict[str, Any]:
    """PUT /allocations/{consumer}: a list before 1.12, a dict keyed by provider after."""
    props: dict[str, Any] = {"project_id": PROJECT, "user_id": PROJECT}
    required = ["allocations"]
    if version >= (1, 8):
        required += ["project_id", "user_id"]
    if version >= (1, 12):
        props["allocations"] = {"type": "object", "propertyNames": {"format": "uuid"}, "additionalProperties": {
            "type": "object", "properties": {"resources": RESOURCES, "generation": GENERATION},
            "required": ["resources"], "additionalProperties": False}}
        if version < (1, 28):
            props["allocations"]["minProperties"] = 1
    else:
        props["allocations"] = {"type": "array", "minItems": 1, "items": {
            "type": "object", "properties": {
                "resource_provider": {"type": "object", "properties": {"uuid": UUID}, "required": ["uuid"],
                                      "additionalProperties": False},
                "resources": RESOURCES},
            "required": ["resource_provider", "resources"], "additionalProperties": False}}
    if version >= (1, 28):
        props["consumer_generation"] = {"anyOf": [GENERATION, {"type": "null"}]}
        required.append("consumer_generation")
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def allocations_post(version: tuple[int, int]) -> dict[str, Any]:
    one = allocations_put(version)
    one = {**one, "properties": {**one["properties"], "allocations": {
        **one["properties"]["allocations"], "minProperties": 0}}}
    return {"type": "object", "minProperties": 1, "propertyNames": {"format": "uuid"}, "additionalProperties": one}


RESOURCE_CLASS: dict[str, Any] = {"type": "object", "properties": {"name": RC_NAME}, "required": ["name"],
                                  "additionalProperties": False}
