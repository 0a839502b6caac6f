"""List querying as Neutron does it on every collection: attribute filters, ``fields``, sorting and
``limit``/``marker`` paging with ``<resources>_links``."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from tinystack.core import errors

CONTROL = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse", "tags", "tags-any", "not-tags",
           "not-tags-any"}


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return any(w.lower() == str(value).lower() for w in wanted)
    if isinstance(value, list):
        if any(isinstance(v, dict) for v in value):
            # fixed_ips=ip_address=10.0.0.3 / fixed_ips=subnet_id=<id>: any element with that key and value
            for w in wanted:
                key, _, val = w.partition("=")
                if any(isinstance(v, dict) and str(v.get(key)) == val for v in value):
                    return True
            return False
        return any(str(v) in wanted for v in value)
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    return str(value) in wanted


def _tags(item: Mapping[str, Any], query: Mapping[str, list[str]]) -> bool:
    have = set(item.get("tags") or [])

    def split(name: str) -> set[str]:
        return {t for raw in query.get(name, []) for t in raw.split(",") if t}

    all_of, any_of, not_all, not_any = split("tags"), split("tags-any"), split("not-tags"), split("not-tags-any")
    if all_of and not all_of <= have:
        return False
    if any_of and not any_of & have:
        return False
    if not_all and not_all <= have:
        return False
    return not (not_any and not_any & have)


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def _sort_key(key: str, item: Mapping[str, Any]) -> tuple[int, Any]:
    return _sort_value(item.get(key))


def apply(items: list[dict[str, Any]], query: Mapping[str, list[str]], plural: str, base_url: str,
          default_limit: int = 0) -> dict[str, Any]:
    """Filter, sort, page and project ``items`` (already visible to the caller) into a list response."""
    filters = {k: v for k, v in query.items() if k not in CONTROL}
    # Filters on attributes the resource does not have are ignored, as Neutron does without strict checking.
    out = [i for i in items if all(k not in i or _matches(i[k], v) for k, v in filters.items())]
    out = [i for i in out if _tags(i, query)]
    keys, dirs = query.get("sort_key", []), query.get("sort_dir", [])
    if dirs and len(dirs) != len(keys):
        raise errors.BadRequest("The number of sort_keys and sort_dirs must be same", type="HTTPBadRequest")
    for d in dirs:
        if d not in ("asc", "desc"):
            raise errors.BadRequest(f"{d} is an invalid value for sort_dir, valid values are 'asc' and 'desc'",
                                    type="HTTPBadRequest")
    for key in keys:
        if out and key not in out[0]:
            raise errors.BadRequest(f"{key} is an invalid attribute for sort_key", type="HTTPBadRequest")
    # Stable sorts applied from the last key to the first give a multi-key sort; id breaks ties.
    out.sort(key=lambda i: str(i.get("id")))
    for key, direction in reversed(list(zip(keys, dirs or ["asc"] * len(keys), strict=True))):
        out.sort(key=functools.partial(_sort_key, key), reverse=direction == "desc")
    limit = _limit(query, default_limit)
    marker = query["marker"][-1] if query.get("marker") else None
    reverse = (query.get("page_reverse") or ["false"])[-1].lower() == "true"
    links = []
    if marker is not None:
        index = next((n for n, i in enumerate(out) if i.get("id") == marker), None)
        if index is None:
            raise errors.NotFound(f"Marker {marker} could not be found.", type="HTTPNotFound")
        out = out[:index] if reverse else out[index + 1:]
    if reverse:
        out = out[::-1]
    if limit:
        more = len(out) > limit
        out = out[:limit]
        if reverse:
            out = out[::-1]
        if out:
            params = [(k, v) for k, vs in query.items() if k not in ("marker", "page_reverse") for v in vs]
            if more or reverse:
                links.append({"rel": "next", "href": f"{base_url}?{urlencode([*params, ('marker', out[-1]['id'])])}"})
            if marker is not None:
                prev = [*params, ("marker", out[0]["id"]), ("page_reverse", "True")]
                links.append({"rel": "previous", "href": f"{base_url}?{urlencode(prev)}"})
    fields = [f for raw in query.get("fields", []) for f in raw.split(",") if f]
    if fields:
        out = [{k: v for k, v in i.items() if k in fields} for i in out]
    body: dict[str, Any] = {plural: out}
    if links:
        body[f"{plural}_links"] = links
    return body


def _limit(query: Mapping[str, list[str]], default: int) -> int:
    raw = query["limit"][-1] if query.get("limit") else None
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"Bad limit request: Limit must be an integer 0 or greater and not '{raw}'.",
                                type="BadRequest") from None
    if value < 0:
        raise errors.BadRequest(f"Bad limit request: Limit must be an integer 0 or greater and not '{raw}'.",
                                type="BadRequest")
    return value


def project(item: dict[str, Any], query: Mapping[str, list[str]]) -> dict[str, Any]:
    """``fields`` on a single resource (GET /<resources>/{id}?fields=...)."""
    fields = [f for raw in query.get("fields", []) for f in raw.split(",") if f]
    return {k: v for k, v in item.items() if k in fields} if fields else item

