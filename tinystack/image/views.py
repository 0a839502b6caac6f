"""Images, members and tasks as Glance v2 renders them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from tinystack.image.models import Image, ImageMember, ImageTask

ReadableCheck = Callable[[str], bool]


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def image(img: Image, readable: ReadableCheck | None = None,
          locations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An image; ``locations`` (where its data is) only for callers allowed to see them."""
    out: dict[str, Any] = {}
    for prop in img.properties:
        if readable is None or readable(prop.name):
            # Glance shows a null free-form property as "" (its v1 heritage).
            out[prop.name] = prop.value if prop.value is not None or prop.name in ("kernel_id", "ramdisk_id") else ""
    out.update({
        "id": img.id, "name": img.name, "status": img.status, "visibility": img.visibility,
        "protected": img.protected, "os_hidden": img.os_hidden, "checksum": img.checksum,
        "os_hash_algo": img.os_hash_algo, "os_hash_value": img.os_hash_value, "owner": img.owner,
        "size": img.size, "virtual_size": img.virtual_size, "container_format": img.container_format,
        "disk_format": img.disk_format, "min_ram": img.min_ram, "min_disk": img.min_disk,
        "created_at": iso(img.created_at), "updated_at": iso(img.updated_at),
        "tags": sorted(t.value for t in img.tags),
        "self": f"/v2/images/{img.id}", "file": f"/v2/images/{img.id}/file", "schema": "/v2/schemas/image",
    })
    stores = [loc.store for loc in img.locations if loc.status == "active"]
    if stores:
        out["stores"] = ",".join(dict.fromkeys(stores))
    if locations is not None:
        out["locations"] = locations
    return out


def images(items: list[dict[str, Any]], params: list[tuple[str, str]], next_marker: str | None) -> dict[str, Any]:
    kept = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {"images": items, "first": "/v2/images", "schema": "/v2/schemas/images"}
    if kept:
        body["first"] = f"/v2/images?{urlencode(kept)}"
    if next_marker is not None:
        body["next"] = f"/v2/images?{urlencode([*kept, ('marker', next_marker)])}"
    return body


def member(m: ImageMember) -> dict[str, Any]:
    return {"member_id": m.member, "image_id": m.image_id, "status": m.status, "created_at": iso(m.created_at),
            "updated_at": iso(m.updated_at), "schema": "/v2/schemas/member"}


def members(items: list[ImageMember]) -> dict[str, Any]:
    return {"members": [member(m) for m in items], "schema": "/v2/schemas/members"}


def task(t: ImageTask, summary: bool = False) -> dict[str, Any]:
    """A task; a list shows it without its input, result and message (as Glance's does)."""
    out = {"id": t.id, "type": t.type, "status": t.status, "owner": t.owner, "image_id": t.image_id,
            "request_id": t.request_id, "user_id": t.user_id, "input": t.input, "result": t.result,
            "message": t.message, "expires_at": iso(t.expires_at), "created_at": iso(t.created_at),
            "updated_at": iso(t.updated_at), "deleted": False, "deleted_at": None,
            "self": f"/v2/tasks/{t.id}", "schema": "/v2/schemas/task"}
    if summary:
        for key in ("input", "result", "message"):
            del out[key]
    return out


def tasks(items: list[dict[str, Any]], params: list[tuple[str, str]], next_marker: str | None) -> dict[str, Any]:
    kept = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {"tasks": items, "first": "/v2/tasks", "schema": "/v2/schemas/tasks"}
    if kept:
        body["first"] = f"/v2/tasks?{urlencode(kept)}"
    if next_marker is not None:
        body["next"] = f"/v2/tasks?{urlencode([*kept, ('marker', next_marker)])}"
    return body
