"""Look-ups several panels share: whole lists in as few calls as the APIs allow, and name maps for the ids a
list shows (one list call each, never one call per row)."""

from __future__ import annotations

import asyncio
from typing import Any

from tinystack.dashboard.client import Api, ApiError

PAGE = 1000
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
