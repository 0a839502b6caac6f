"""Glance's JSON patch dialects for ``PATCH /v2/images/{id}``: parsing, validation and applying to a draft.

``application/openstack-images-v2.1-json-patch`` is RFC 6902 style (``{"op": "add", "path": "/x"}``);
``...-v2.0-json-patch`` is the older ``{"add": "/x"}`` form, where ``add`` of something present is a 409."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tinystack.core import errors
from tinystack.core.web import validate
from tinystack.image import schemas

MEDIA_TYPES = {"application/openstack-images-v2.0-json-patch": 4,
               "application/openstack-images-v2.1-json-patch": 10}
ACCEPT_PATCH = ", ".join(sorted(MEDIA_TYPES))
OPERATIONS = ("add", "remove", "replace")
_VALUE_SCHEMA = {"type": "object", "properties": schemas.image()["properties"], "additionalProperties": {"type": "string"}}


@dataclass(frozen=True)
class Change:
    op: str
    name: str
    value: Any = None
    draft4: bool = False


@dataclass
class Draft:
    """The user-editable part of an image: base attributes and the properties the caller may read."""

    attrs: dict[str, Any]
    properties: dict[str, str | None] = field(default_factory=dict)

    def copy(self) -> Draft:
        attrs = dict(self.attrs)
        attrs["tags"] = list(attrs.get("tags", []))
        return Draft(attrs, dict(self.properties))


def media_version(content_type: str) -> int:
    """The patch dialect for ``content_type``; anything else is a 415."""
    try:
        return MEDIA_TYPES[content_type]
    except KeyError:
        raise errors.UnsupportedMediaType(f"Image PATCH expects Content-Type one of: {ACCEPT_PATCH}") from None


def _pointer(pointer: Any) -> str:
    """The single property name a JSON pointer names; Glance accepts only one level."""
    if not isinstance(pointer, str):
        raise errors.BadRequest("A JSON pointer must be a string.")
    if not pointer.startswith("/"):
        raise errors.BadRequest(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise errors.BadRequest(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise errors.BadRequest(f'Pointer `{pointer}` end with "/".')
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise errors.BadRequest(f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.')
    parts = [p.replace("~1", "/").replace("~0", "~").strip() for p in pointer[1:].split("/")]
    if len(parts) != 1 or not parts[0]:
        raise errors.BadRequest(f"Invalid JSON pointer for this resource: '{pointer}'")
    return parts[0]


def _operation(raw: dict[str, Any], version: int) -> tuple[str, Any]:
    if version == 10:
        op = raw.get("op")
        if op not in OPERATIONS:
            raise errors.BadRequest(f"Invalid operation: `{op}`. It must be one of the following: "
                                    f"{', '.join(OPERATIONS)}.")
        if "path" not in raw:
            raise errors.BadRequest("Unable to find 'path' in JSON Schema change")
        return op, raw["path"]
    present = [op for op in OPERATIONS if op in raw]
    if len(present) != 1:
        raise errors.BadRequest('Operation objects must contain exactly one member named "add", "remove", '
                                'or "replace".')
    return present[0], raw[present[0]]


def _check_name(name: str) -> None:
    # Read-only is a bad request (the issue asks for 400; Glance itself answers 403). Reserved names stay
    # 403: Tempest's reserved-property tests expect Forbidden for ``os_glance_*``.
    if name in schemas.READ_ONLY:
        raise errors.BadRequest(f"Attribute '{name}' is read-only.")
    if name in schemas.RESERVED or name.startswith(schemas.RESERVED_PREFIX):
        raise errors.Forbidden(f"Attribute '{name}' is reserved.")


def parse(content_type: str, body: Any) -> list[Change]:
    """Check a patch document and turn it into changes; nothing is applied yet."""
    version = media_version(content_type)
    if not isinstance(body, list):
        raise errors.BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise errors.BadRequest("Operations must be JSON objects.")
        op, pointer = _operation(raw, version)
        if isinstance(pointer, str) and pointer.startswith("/locations/"):
            # An operator's change of one location: the service checks it (``locations.parse``). The whole
            # list (``/locations``) stays read-only.
            changes.append(Change(op, "locations", {"path": pointer.split("/")[2:], "value": raw.get("value")}))
            continue
        name = _pointer(pointer)
        _check_name(name)
        if op == "remove":
            changes.append(Change(op, name, draft4=version == 4))
            continue
        if "value" not in raw:
            raise errors.BadRequest(f'Operation "{op}" requires a member named "value".')
        check_value(name, raw["value"])
        changes.append(Change(op, name, raw["value"], draft4=version == 4))
    return changes


def check_value(name: str, value: Any) -> None:
    """Validate one attribute or property value against the image schema (400 when it does not fit)."""
    validate({name: value}, _VALUE_SCHEMA)
    if name in ("min_ram", "min_disk") and value < 0:
        raise errors.BadRequest(f"Invalid value for '{name}': Cannot be a negative value.")
    if len(name) > 255:
        raise errors.BadRequest("Custom property should not be greater than 255 characters.")


def apply(draft: Draft, changes: list[Change]) -> Draft:
    """The draft after ``changes``, all or nothing."""
    out = draft.copy()
    for change in changes:
        base = change.name in schemas.BASE_ATTRIBUTES
        exists = base or change.name in out.properties
        if change.op == "remove":
            if base:
                raise errors.Forbidden(f"Property {change.name} may not be removed.")
            if not exists:
                raise errors.Conflict(f"Property {change.name} does not exist.")
            del out.properties[change.name]
            continue
        if change.op == "add" and change.draft4 and exists:
            raise errors.Conflict(f"Property {change.name} already present.")
        if change.op == "replace" and not exists:
            raise errors.Conflict(f"Property {change.name} does not exist.")
        if base:
            out.attrs[change.name] = list(dict.fromkeys(change.value)) if change.name == "tags" else change.value
        else:
            out.properties[change.name] = change.value
    return out
