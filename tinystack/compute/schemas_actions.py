"""JSON schemas of the server actions (``POST /servers/{id}/action``), one per action body's value: what each
action accepts, checked before any rule runs. Open objects where Nova's clients send fields tinystack ignores."""

from __future__ import annotations

from typing import Any

from tinystack.compute.schemas import BOOLISH, METADATA, NAME

Schema = dict[str, Any]

# Actions without arguments: clients send null (``{"os-stop": null}``), some an empty object.
NO_ARGS: Schema = {"type": ["null", "object"]}
# Before 2.73 Nova ignored whatever came with ``lock``.
ANYTHING: Schema = {}

_HOST = {"type": ["string", "null"], "maxLength": 255}
_TEXT = {"type": "string", "maxLength": 255}
_PASSWORD = {"type": "string"}
_FLAVOR_REF = {"type": ["string", "integer"], "minLength": 1}
_DISK_CONFIG = {"type": "string", "enum": ["AUTO", "MANUAL"]}


def _args(properties: dict[str, Any], required: tuple[str, ...] = (), nullable: bool = False,
          closed: bool = False) -> Schema:
    """An object of ``properties``; ``nullable``: a null body means no arguments; ``closed``: nothing else."""
    out: Schema = {"type": ["object", "null"] if nullable else "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    return out


REBOOT = _args({"type": {"type": "string", "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}},
               required=("type",))
LOCK_2_73 = _args({"locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}}, nullable=True,
                  closed=True)
RESCUE = _args({"adminPass": _PASSWORD, "rescue_image_ref": {"type": "string"}}, nullable=True)
CHANGE_PASSWORD = _args({"adminPass": _PASSWORD}, required=("adminPass",))
RESET_STATE = _args({"state": {"type": "string", "enum": ["active", "error"]}}, required=("state",), closed=True)
CREATE_IMAGE = _args({"name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"},
                      "metadata": METADATA}, required=("name",))
REBUILD = _args({
    "imageRef": {"type": "string"}, "name": NAME, "adminPass": _PASSWORD, "metadata": METADATA,
    "description": {"type": ["string", "null"], "maxLength": 255}, "user_data": {"type": ["string", "null"]},
    "key_name": {"type": ["string", "null"], "maxLength": 255}, "preserve_ephemeral": BOOLISH,
    "OS-DCF:diskConfig": _DISK_CONFIG, "accessIPv4": {"type": "string"}, "accessIPv6": {"type": "string"},
    "personality": {"type": "array"}, "hostname": {"type": "string", "minLength": 1, "maxLength": 255},
    "trusted_image_certificates": {"type": ["array", "null"]}}, required=("imageRef",))
RESIZE = _args({"flavorRef": _FLAVOR_REF, "OS-DCF:diskConfig": _DISK_CONFIG}, required=("flavorRef",))
UNSHELVE = _args({"availability_zone": {"type": ["string", "null"], "maxLength": 255}, "host": _TEXT},
                 nullable=True)
MIGRATE = _args({"host": _HOST}, nullable=True)
MIGRATE_LIVE = _args({"host": _HOST, "block_migration": {"type": ["boolean", "string"]},
                      "disk_over_commit": BOOLISH, "force": BOOLISH})
EVACUATE = _args({"host": _HOST, "adminPass": _PASSWORD, "onSharedStorage": BOOLISH, "force": BOOLISH},
                 nullable=True)
CONSOLE_OUTPUT = _args({"length": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$",
                                   "minimum": -1}}, nullable=True)
SECURITY_GROUP = _args({"name": {"type": "string", "minLength": 1, "maxLength": 255}}, required=("name",))
