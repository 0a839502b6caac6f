"""Look-ups several panels share: whole lists in as few calls as the APIs allow, one page of a list as Horizon
pages its tables (``page_of``), short-lived per-session look-ups (``cached``), and name maps for the ids a list
shows (one list call each, never one call per row)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tinystack.dashboard.client import Api, ApiError
from tinystack.dashboard.session import Session

PAGE = 1000
# Rows per page of a paged table: Horizon's ``API_RESULT_PAGE_SIZE`` default.
PAGE_SIZE = 20
# How long a session's look-up lists (image names, volume types) are reused before they are fetched again.
LOOKUP_SECONDS = 15.0
# Server states that change by themselves: a page showing one refreshes its status until it settles.
SETTLED_SERVER = frozenset({"ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR", "SHELVED", "SHELVED_OFFLOADED",
                            "RESCUE", "VERIFY_RESIZE", "DELETED", "SOFT_DELETED"})
SETTLED_VOLUME = frozenset({"available", "in-use", "error", "error_extending", "error_deleting"})


async def list_all(api: Api, service: str, path: str, key: str, params: dict[str, str] | None = None,
                   paged: bool = True) -> list[dict[str, Any]]:
    """Every item of a list endpoint: pages of ``PAGE`` by marker, for APIs that cap one answer."""
    out: list[dict[str, Any]] = []
    query = dict(params or {})
    while True:
        if paged:
            query["limit"] = str(PAGE)
        body = await api.get(service, path, query)
        items = body.get(key, [])
        out.extend(items)
        if not paged or len(items) < PAGE or not items or not _has_next(body, key):
            return out
        query["marker"] = items[-1]["id"]


def _has_next(body: dict[str, Any], key: str) -> bool:
    """Whether a page says more follow: Glance's ``next``, or a ``<key>_links`` entry with ``rel: next``
    (Nova, Cinder, Neutron), so that a full last page costs no extra, empty call."""
    if "next" in body:
        return bool(body["next"])
    return any(link.get("rel") == "next" for link in body.get(f"{key}_links", []))


async def gather(*calls: Any) -> list[Any]:
    """Several independent API calls at once (a page's lists)."""
    return list(await asyncio.gather(*calls))


async def optional(call: Any, default: Any) -> Any:
    """A call whose failure should not break the page (a service the user may not see)."""
    try:
        return await call
    except ApiError:
        return default


def server_settled(server: dict[str, Any]) -> bool:
    return server.get("status") in SETTLED_SERVER and not server.get("OS-EXT-STS:task_state")


def addresses(server: dict[str, Any]) -> list[str]:
    """Every address of a server, floating ones marked."""
    out = []
    for addrs in (server.get("addresses") or {}).values():
        for a in addrs:
            kind = a.get("OS-EXT-IPS:type")
            out.append(f"{a['addr']} (floating)" if kind == "floating" else a["addr"])
    return out


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


@dataclass
class Paged:
    """One page of a list and the markers of its neighbours (``None``: no page that way)."""

    items: list[dict[str, Any]]
    next_marker: str | None
    prev_marker: str | None

    def query(self, marker: str | None, prev: bool = False) -> str:
        """The query string of a neighbour page's link."""
        return f"?{'prev_marker' if prev else 'marker'}={quote(marker, safe='')}" if marker else ""


async def page_of(api: Api, service: str, path: str, key: str, request: web.Request, params: dict[str, str],
                  reverse: dict[str, str], size: int = PAGE_SIZE) -> Paged:
    """One page of ``size`` items, as Horizon pages its tables: forward from ``?marker=`` in the API's own order,
    or back from ``?prev_marker=`` by asking for the reverse order (``reverse``: the sort parameters that give it)
    and turning the answer round. One item more than the page is asked for, to know whether another page follows."""
    query = dict(params)
    marker, prev = request.query.get("marker", ""), request.query.get("prev_marker", "")
    backwards = bool(prev) and not marker
    if backwards:
        query.update(reverse)
    if marker or prev:
        query["marker"] = marker or prev
    query["limit"] = str(size + 1)
    items = (await api.get(service, path, query)).get(key, [])
    more = len(items) > size
    items = items[:size]
    if backwards:
        items.reverse()
        return Paged(items, items[-1]["id"] if items else None, items[0]["id"] if more and items else None)
    return Paged(items, items[-1]["id"] if more and items else None, items[0]["id"] if marker and items else None)


async def cached(sess: Session, key: str, fetch: Callable[[], Awaitable[Any]], ttl: float = LOOKUP_SECONDS) -> Any:
    """A look-up (a name map, a list of types) kept in the session for ``ttl`` seconds: the pages that show ids
    as names need it on every refresh, and it changes far less often than they refresh. Forms that change what
    it holds call ``forget``."""
    hit = sess.cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    value = await fetch()
    sess.cache[key] = (now, value)
    return value


def forget(sess: Session, *keys: str) -> None:
    for key in keys:
        sess.cache.pop(key, None)


async def image_names(api: Api, sess: Session) -> dict[str, str]:
    """Image id -> name of every image the project sees (cached briefly in the session)."""
    async def fetch() -> dict[str, str]:
        images = await optional(list_all(api, "image", "/v2/images", "images"), [])
        return {i["id"]: i.get("name") or i["id"] for i in images}

    names: dict[str, str] = await cached(sess, "image_names", fetch)
    return names
