"""``GET /v2/images``: Glance's query language (filters, operators, sorting, paging) as SQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, true

from tinystack.core import errors, paging
from tinystack.core.auth import RequestContext
from tinystack.image.models import Image, ImageMember, ImageProperty, ImageTag

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
_IN_OPERATOR_KEYS = ("name", "id", "status", "container_format", "disk_format")
_TIME_KEYS = ("created_at", "updated_at")
_INT_COLUMNS = ("size", "virtual_size", "min_ram", "min_disk")
_STR_COLUMNS = ("owner", "checksum", "os_hash_value", "os_hash_algo")
_BOOL_FILTERS = ("os_hidden", "protected")
_MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
_VISIBILITIES = ("community", "public", "private", "shared", "all")
_CONTROL = ("limit", "marker", "sort", "sort_key", "sort_dir", "member_status", "tag", "visibility")
# Glance's words for bad paging parameters.
GLANCE = paging.Wording(
    not_integer="{name} param must be an integer", too_small="{name} param must be positive",
    sort_key="Invalid sort key: {key}. It must be one of the following: {keys}.",
    sort_dir="Invalid sort direction: {direction}", sort_count="Number of sort dirs does not match the number of sort keys",
    mixed_syntax="Old and new sorting syntax cannot be combined", marker="marker [{marker}] not found")


@dataclass
class ListQuery:
    limit: int
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    visibility: str | None = None
    member_status: str = "accepted"
    tags: list[str] = field(default_factory=list)
    conditions: list[ColumnElement[bool]] = field(default_factory=list)


def _split_op(expression: str) -> tuple[str, str]:
    left, sep, right = expression.partition(":")
    if not sep or _parse_time(expression) is not None:
        return "eq", expression
    return left, right


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _in_values(text: str) -> list[str]:
    if text.count('"') % 2:
        raise errors.BadRequest(f"Invalid filter value {text}. The quote is not closed.")
    return [a or b for a, b in re.findall(r'"([^"\\]*(?:\\.[^"\\]*)*)",?|([^,]+),?|,', text)]


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    ops = {"eq": column == value, "neq": column != value, "gt": column > value, "gte": column >= value,
           "lt": column < value, "lte": column <= value}
    if op not in ops:
        raise errors.BadRequest(f"Unable to filter on a unknown operator '{op}'.")
    return ops[op]  # type: ignore[return-value]


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f"Unable to filter on a range with a non-numeric value ({key}).") from None


def parse(params: Mapping[str, Any], getall: Callable[[str], list[str]], default_limit: int, max_limit: int) -> ListQuery:
    """Turn query parameters into a ListQuery; ``getall(name)`` returns every value of a repeated one."""
    page = paging.page(paging.Params(params, getall), SORT_KEYS, default_limit, max_limit, GLANCE,
                       default_key="created_at")
    q = ListQuery(limit=page.limit if page.limit is not None else default_limit, marker=page.marker,
                  sort=paging.with_tiebreaks(page.sort or [("created_at", "desc")], ("created_at", "id")))
    q.member_status = params.get("member_status", "accepted")
    if q.member_status not in _MEMBER_STATUSES:
        raise errors.BadRequest(f"Invalid status: {q.member_status}")
    q.visibility = params.get("visibility") or None
    if q.visibility is not None and q.visibility not in _VISIBILITIES:
        raise errors.BadRequest(f"Invalid visibility value: {q.visibility}")
    if "changes-since" in params:
        raise errors.BadRequest('The "changes-since" filter is no longer available on v2.')
    q.tags = [t.strip() for t in getall("tag")]
    hidden = str(params.get("os_hidden", "false")).lower()
    if hidden not in ("true", "false"):
        raise errors.BadRequest(f"Invalid value '{hidden}' for 'os_hidden' filter. Valid values are 'true' or "
                                "'false'.")
    q.conditions.append(Image.os_hidden == (hidden == "true"))
    for key in params:
        if key in _CONTROL or key == "os_hidden":
            continue
        q.conditions.append(_filter(key, str(params[key])))
    return q


def _filter(key: str, value: str) -> ColumnElement[bool]:
    if key.endswith(("_min", "_max")) and key[:-4] in _INT_COLUMNS:
        column = getattr(Image, key[:-4])
        return column >= _int(key, value) if key.endswith("_min") else column <= _int(key, value)
    if key in _TIME_KEYS:
        op, text = _split_op(value)
        when = _parse_time(text)
        if when is None:
            raise errors.BadRequest(f'Bad "{key}" query filter format. Use ISO 8601 DateTime notation.')
        return _compare(getattr(Image, key), op, when)
    if key in _IN_OPERATOR_KEYS:
        op, text = _split_op(value)
        if op == "in":
            return getattr(Image, key).in_(_in_values(text))
        if op != "eq":
            raise errors.BadRequest(f"Unable to filter by unknown operator '{op}'.")
        return getattr(Image, key) == text  # type: ignore[no-any-return]
    if key in _BOOL_FILTERS:
        if value not in ("true", "false"):
            raise errors.BadRequest(f"Invalid value '{value}' for '{key}' filter. Valid values are 'true' or "
                                    "'false'.")
        return getattr(Image, key) == (value == "true")  # type: ignore[no-any-return]
    if key in _INT_COLUMNS:
        return getattr(Image, key) == _int(key, value)  # type: ignore[no-any-return]
    if key in _STR_COLUMNS:
        return getattr(Image, key) == value  # type: ignore[no-any-return]
    return exists().where(ImageProperty.image_id == Image.id, ImageProperty.name == key, ImageProperty.value == value)


def visible(ctx: RequestContext, visibility: str | None, member_status: str) -> ColumnElement[bool]:
    """Which images the caller sees in a list, as Glance's database layer decides."""
    conds: list[ColumnElement[bool]] = []
    project = ctx.project_id
    if not ctx.is_admin:
        membership = exists().where(ImageMember.image_id == Image.id, ImageMember.member == (project or ""))
        if member_status != "all":
            membership = membership.where(ImageMember.status == member_status)
        mine = Image.owner == project if project else false()
        conds.append(or_(Image.visibility.in_(("public", "community")), mine,
                         and_(Image.visibility == "shared", membership)))
    if visibility not in (None, "all"):
        conds.append(Image.visibility == visibility)
    elif visibility is None:
        # Community images are listed only when asked for, or to their owner.
        conds.append(or_(Image.visibility != "community", Image.owner == project) if project
                     else Image.visibility != "community")
    return and_(true(), *conds)


def sort_columns(sort: Sequence[tuple[str, str]]) -> list[tuple[Any, bool]]:
    """(expression, descending) per sort key; NULLs become a value below every real one, so keyset paging
    compares totally."""
    out = []
    for key, direction in sort:
        column: Any = getattr(Image, key)
        if key == "size":
            column = func.coalesce(column, -1)
        elif key in ("name", "container_format", "disk_format"):
            column = func.coalesce(column, "")
        out.append((column, direction == "desc"))
    return out


def statement(ctx: RequestContext, q: ListQuery, marker_values: Sequence[Any] | None) -> Select[Image]:
    """The page's SELECT, fetching one row more than the limit to tell whether a next page exists."""
    stmt = select(Image).where(visible(ctx, q.visibility, q.member_status), *q.conditions)
    for tag in q.tags:
        stmt = stmt.where(exists().where(ImageTag.image_id == Image.id, ImageTag.value == tag))
    columns = sort_columns(q.sort)
    if marker_values is not None:
        after = []
        for i, (column, desc) in enumerate(columns):
            equal = [c == v for (c, _), v in zip(columns[:i], marker_values[:i], strict=True)]
            after.append(and_(*equal, column < marker_values[i] if desc else column > marker_values[i]))
        stmt = stmt.where(or_(*after))
    stmt = stmt.order_by(*(c.desc() if desc else c.asc() for c, desc in columns))
    return stmt.limit(q.limit + 1)


def marker_statement(q: ListQuery, marker: str) -> Select[Any]:
    return select(*(c for c, _ in sort_columns(q.sort))).where(Image.id == marker)
