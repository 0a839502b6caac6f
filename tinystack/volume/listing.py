"""Cinder's list query parameters, shared by volumes and snapshots: whose rows (``all_tenants``), the metadata
filter, sort keys and directions, and ``marker``/``limit``/``offset`` paging over sorted rows."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, select

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.schemas import truthy

SORT_KEYS = ("id", "name", "status", "size", "availability_zone", "created_at", "updated_at", "bootable",
             "project_id", "user_id", "volume_type_id", "display_name")


def tenant_rows(model: Any, ctx: RequestContext, q: dict[str, str]) -> Select[Any]:
    """The query for the rows of ``model`` a list shows: the caller's project's; with ``all_tenants``, for an admin,
    every project's (or only ``project_id``'s when given)."""
    stmt = select(model)
    if not (ctx.is_admin and "all_tenants" in q and truthy(q.get("all_tenants") or "1")):
        return stmt.where(model.project_id == ctx.project_id)
    if q.get("project_id"):
        return stmt.where(model.project_id == q["project_id"])
    return stmt


def parse_metadata_filter(raw: str) -> dict[str, str]:
    """``metadata={'k': 'v'}``: Cinder reads a Python literal; JSON works too."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(raw)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
    raise errors.BadRequest(f"Invalid metadata filter {raw!r}: expected a dictionary.")


def parse_sort(q: dict[str, str]) -> list[tuple[str, str]]:
    """``sort=k1:dir,k2`` or ``sort_key``/``sort_dir``; Cinder's default is newest first."""
    pairs: list[tuple[str, str]] = []
    if q.get("sort"):
        for part in q["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key.strip(), (direction or "desc").strip().lower()))
    elif q.get("sort_key") or q.get("sort_dir"):
        pairs.append((q.get("sort_key") or "created_at", (q.get("sort_dir") or "desc").lower()))
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise errors.BadRequest(f"Invalid input received: Invalid sort key {key}.")
        if direction not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid input received: Invalid sort direction {direction}.")
    keys = [k for k, _ in pairs]
    if "created_at" not in keys:
        pairs.append(("created_at", "desc"))
    if "id" not in keys:
        pairs.append(("id", "desc"))
    return [("name" if k == "display_name" else k, d) for k, d in pairs]


def sort_rows(rows: list[Any], pairs: list[tuple[str, str]]) -> list[Any]:
    def by(key: str) -> Callable[[Any], tuple[bool, Any]]:
        def value(row: Any) -> tuple[bool, Any]:
            v = getattr(row, key)
            return (v is not None, v if v is not None else 0)  # None sorts first, as in the database

        return value

    for key, direction in reversed(pairs):
        rows.sort(key=by(key), reverse=direction == "desc")
    return rows


def page(rows: list[Any], q: dict[str, str], max_limit: int) -> tuple[list[Any], bool]:
    """``marker``/``limit``/``offset`` over sorted rows; returns the page and whether a next link is due."""
    marker = q.get("marker")
    if marker:
        ids = [r.id for r in rows]
        if marker not in ids:
            raise errors.BadRequest(f"Invalid input received: marker [{marker}] not found.")
        rows = rows[ids.index(marker) + 1:]
    if q.get("offset"):
        rows = rows[parse_nonneg(q["offset"], "offset"):]
    limit = parse_nonneg(q["limit"], "limit") if q.get("limit") else None
    limit = max_limit if limit is None else min(limit, max_limit)
    return rows[:limit], len(rows[:limit]) == limit and (q.get("limit") is not None or len(rows) > limit)


def parse_nonneg(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"Invalid input received: {name} must be an integer.") from None
    if value < 0:
        raise errors.BadRequest(f"Invalid input received: {name} must be >= 0.")
    return value


# resource_filters (3.33): the list filters this cloud applies, per resource; resources it does not serve
# (pools) are left out rather than advertised.
RESOURCE_FILTERS: dict[str, list[str]] = {
    "volume": ["name", "status", "availability_zone", "bootable", "metadata", "volume_type", "group_id"],
    "snapshot": ["name", "status", "volume_id", "metadata"],
    "backup": ["name", "status", "volume_id", "availability_zone", "metadata"],
    "attachment": ["volume_id", "status", "instance_id"],
    "message": ["resource_uuid", "resource_type", "event_id", "request_id", "message_level"],
    "volume_type": ["is_public"],
    "group": ["name", "status", "availability_zone"],
    "group_snapshot": ["name", "status", "group_id"],
    "group_type": ["is_public"],
}
