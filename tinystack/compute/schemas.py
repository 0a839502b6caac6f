"""JSON schemas for compute request bodies (Nova's, trimmed to what tinystack checks up front)."""

from __future__ import annotations

from typing import Any

NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^(?!\s)[\s\S]*(?<!\s)$"}
METADATA = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255},
            "propertyNames": {"minLength": 1, "maxLength": 255}}
UUID_OR_STR = {"type": "string", "minLength": 1, "maxLength": 255}
BOOLISH = {"type": ["boolean", "string"], "enum": [True, False, "true", "false", "True", "False", "1", "0",
                                                     "yes", "no", "on", "off"]}
COUNT = {"type": ["integer", "string"], "pattern": r"^[0-9]+$", "minimum": 1}

NETWORK = {"type": "object", "additionalProperties": False, "properties": {
    "uuid": {"type": "string"}, "port": {"type": ["string", "null"]},
    "fixed_ip": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    "tag": {"type": "string", "maxLength": 60}}}

BDM = {"type": "object", "properties": {
    "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
    "destination_type": {"type": "string", "enum": ["local", "volume"]},
    "uuid": {"type": "string"}, "boot_index": {"type": ["integer", "string", "null"]},
    "volume_size": {"type": ["integer", "string"]}, "delete_on_termination": BOOLISH}}

SERVER_CREATE: dict[str, Any] = {
    "type": "object", "required": ["server"], "properties": {"server": {
        "type": "object", "required": ["name", "flavorRef"], "properties": {
            "name": NAME, "imageRef": {"type": "string"}, "flavorRef": {"type": ["string", "integer"], "minLength": 1},
            "adminPass": {"type": "string"}, "metadata": METADATA, "key_name": NAME,
            "networks": {"oneOf": [{"type": "array", "items": NETWORK},
                                   {"type": "string", "enum": ["none", "auto"]}]},
            "security_groups": {"type": "array", "items": {"type": "object", "properties": {"name": NAME},
                                                           "required": ["name"]}},
            "user_data": {"type": "string", "maxLength": 65535},
            "availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
            "block_device_mapping_v2": {"type": "array", "items": BDM},
            "min_count": COUNT, "max_count": COUNT, "return_reservation_id": BOOLISH,
            "config_drive": BOOLISH, "description": {"type": ["string", "null"], "maxLength": 255},
            "tags": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 60,
                                                                 "pattern": "^[^,/]*$"}},
            "hostname": {"type": "string", "minLength": 1, "maxLength": 255},
            "accessIPv4": {"type": "string", "format": "ipv4"}, "accessIPv6": {"type": "string", "format": "ipv6"},
            "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
            "personality": {"type": "array"}, "host": {"type": "string"},
            "hypervisor_hostname": {"type": "string"},
        }},
        "os:scheduler_hints": {"type": "object"}, "OS-SCH-HNT:scheduler_hints": {"type": "object"}},
}

SERVER_UPDATE: dict[str, Any] = {
    "type": "object", "required": ["server"], "properties": {"server": {
        "type": "object", "additionalProperties": False, "properties": {
            "name": NAME, "description": {"type": ["string", "null"], "maxLength": 255},
            "accessIPv4": {"type": "string"}, "accessIPv6": {"type": "string"},
            "hostname": {"type": "string", "minLength": 1, "maxLength": 255},
            "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]}}}}}

FLAVOR_CREATE: dict[str, Any] = {
    "type": "object", "required": ["flavor"], "properties": {"flavor": {
        "type": "object", "required": ["name", "ram", "vcpus", "disk"], "properties": {
            "name": NAME, "id": {"type": ["string", "integer", "null"], "minLength": 1, "maxLength": 255,
                                 "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
            "ram": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
            "vcpus": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1},
            "disk": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0},
            "OS-FLV-EXT-DATA:ephemeral": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0},
            "swap": {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0},
            "rxtx_factor": {"type": ["number", "string"], "minimum": 0, "exclusiveMinimum": 0},
            "os-flavor-access:is_public": BOOLISH, "description": {"type": ["string", "null"], "maxLength": 65535}},
        "additionalProperties": False}}}

KEYPAIR_CREATE: dict[str, Any] = {
    "type": "object", "required": ["keypair"], "properties": {"keypair": {
        "type": "object", "required": ["name"], "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9 _.@-]+$"},
            "public_key": {"type": "string"}, "type": {"type": "string", "enum": ["ssh", "x509"]},
            "user_id": {"type": "string"}}}}}

QUOTA_UPDATE: dict[str, Any] = {
    "type": "object", "required": ["quota_set"], "properties": {"quota_set": {
        "type": "object", "properties": {"force": BOOLISH},
        "additionalProperties": {"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}}}}

# Host aggregates (Nova's schemas: a zone name has no ':', metadata values may be null to remove a key).
AZ_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^(?!\s)[^:]*(?<!\s)$"}
_AGG_HOST = {"type": "object", "required": ["host"], "additionalProperties": False, "properties": {
    "host": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9-._]*$"}}}

AGGREGATE_CREATE: dict[str, Any] = {
    "type": "object", "required": ["aggregate"], "additionalProperties": False, "properties": {"aggregate": {
        "type": "object", "required": ["name"], "additionalProperties": False, "properties": {
            "name": NAME, "availability_zone": {"oneOf": [AZ_NAME, {"type": "null"}]}}}}}

AGGREGATE_UPDATE: dict[str, Any] = {
    "type": "object", "required": ["aggregate"], "additionalProperties": False, "properties": {"aggregate": {
        "type": "object", "additionalProperties": False,
        "anyOf": [{"required": ["name"]}, {"required": ["availability_zone"]}], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "availability_zone": {"oneOf": [AZ_NAME, {"type": "null"}]}}}}}

AGGREGATE_ACTION: dict[str, Any] = {
    "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False, "properties": {
        "add_host": _AGG_HOST, "remove_host": _AGG_HOST,
        "set_metadata": {"type": "object", "required": ["metadata"], "additionalProperties": False, "properties": {
            "metadata": {"type": "object", "additionalProperties": False, "patternProperties": {
                r"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "null"], "maxLength": 255}}}}}}}


def as_bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"))


def as_int(value: Any) -> int:
    return int(value)


# os-server-external-events: the event names each microversion accepts (Nova's create schemas).
EVENT_NAMES_BY_VERSION: tuple[tuple[tuple[int, int], tuple[str, ...]], ...] = (
    ((2, 1), ("network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted")),
    ((2, 51), ("volume-extended",)),
    ((2, 76), ("power-update",)),
    ((2, 82), ("accelerator-request-bound",)),
    ((2, 93), ("volume-reimaged",)),
)
EVENT_STATUSES = ("failed", "completed", "in-progress")


def external_events(version: tuple[int, int]) -> dict[str, Any]:
    """The body of ``POST /os-server-external-events`` at ``version``: a later event name is a 400 before it."""
    names = [n for since, group in EVENT_NAMES_BY_VERSION if version >= since for n in group]
    event = {"type": "object", "required": ["server_uuid", "name"], "additionalProperties": False, "properties": {
        "server_uuid": {"type": "string", "format": "uuid"}, "name": {"type": "string", "enum": names},
        "status": {"type": "string", "enum": list(EVENT_STATUSES)}, "tag": {"type": "string", "maxLength": 255}}}
    return {"type": "object", "required": ["events"], "additionalProperties": False,
            "properties": {"events": {"type": "array", "minItems": 1, "items": event}}}
