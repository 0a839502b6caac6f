"""os-simple-tenant-usage: every project's usage (admin) or one project's (its members or admin) over a
window; paged by server from 2.40 (``limit``, ``marker`` and a ``next`` link)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tinystack.compute.api.common import base, mid
from tinystack.compute.service import ComputeService
from tinystack.compute.usage import ProjectUsage, ServerUsage, Usage, Window
from tinystack.core import errors
from tinystack.core.web import Route, Version, ctx, json_response, query_int, version

PAGED = Version(2, 40)
STRICT_QUERY = Version(2, 75)
QUERY = {"start", "end", "detailed", "limit", "marker"}


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def render_server(u: ServerUsage) -> dict[str, Any]:
    out = asdict(u)
    out.update(started_at=_time(u.started_at), ended_at=_time(u.ended_at))
    return out


def render_project(p: ProjectUsage, detailed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"tenant_id": p.tenant_id, "start": _time(p.start), "stop": _time(p.stop),
                           "total_hours": p.total_hours, "total_vcpus_usage": p.total_vcpus_usage,
                           "total_memory_mb_usage": p.total_memory_mb_usage,
                           "total_local_gb_usage": p.total_local_gb_usage}
    if detailed:
        out["server_usages"] = [render_server(u) for u in p.server_usages]
    return out


class UsageAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self.usage = Usage(svc)

    def routes(self) -> list[Route]:
        return [Route("GET", "/v2.1/os-simple-tenant-usage", self.index),
                Route("GET", "/v2.1/os-simple-tenant-usage/{project_id}", self.show)]

    def _query(self, request: web.Request) -> tuple[Window, int, str | None]:
        v = version(request)
        if v >= STRICT_QUERY and (unknown := sorted(set(request.query) - QUERY)):
            raise errors.BadRequest(f"Invalid input for query parameters: unknown {', '.join(unknown)}.")
        window = Window.parse(request.query.get("start"), request.query.get("end"))
        max_limit = self.svc.settings.max_limit
        if v < PAGED:
            return window, max_limit, None
        limit = query_int(request, "limit", max_limit, minimum=0)
        return window, min(limit if limit is not None else max_limit, max_limit), request.query.get("marker")

    def _links(self, request: web.Request, path: str, servers: list[ServerUsage], limit: int) -> list[dict[str, str]]:
        """A ``next`` link when this page is full, as Nova's collection links do."""
        if version(request) < PAGED or not limit or len(servers) != limit:
            return []
        params = [(k, v) for k, v in request.query.items() if k != "marker"] + [("marker", servers[-1].instance_id)]
        return [{"rel": "next", "href": f"{base(request)}/{path}?{urlencode(params)}"}]

    async def index(self, request: web.Request) -> web.Response:
        window, limit, marker = self._query(request)
        # Nova takes only "1"; openstacksdk sends "True" (openstackclient's usage list asks for detail that
        # way), so a true word counts too.
        detailed = request.query.get("detailed", "0").strip().lower() in ("1", "true")
        projects, servers = self.usage.report(ctx(request), window, None, limit, marker)
        out: dict[str, Any] = {"tenant_usages": [render_project(p, detailed) for p in projects]}
        if links := self._links(request, "os-simple-tenant-usage", servers, limit):
            out["tenant_usages_links"] = links
        return json_response(out)

    async def show(self, request: web.Request) -> web.Response:
        project_id = mid(request, "project_id")
        window, limit, marker = self._query(request)
        projects, servers = self.usage.report(ctx(request), window, project_id, limit, marker)
        # A project that used nothing in the window is an empty object, not zeros (Nova's answer).
        out: dict[str, Any] = {"tenant_usage": render_project(projects[0], True) if projects else {}}
        if links := self._links(request, f"os-simple-tenant-usage/{project_id}", servers, limit):
            out["tenant_usage_links"] = links
        return json_response(out)
