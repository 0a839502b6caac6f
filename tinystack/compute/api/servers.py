"""``/servers``: create, list, detail, show, update, delete."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.compute import schemas, views
from tinystack.compute.api.common import base, mid, rid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, dumps, empty, json_response, read_json, version

V = "/v2.1/servers"


CACHE_MAX = 50_000


class ServersAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        # Rendered detail views by server id, valid while the row's (updated_at, generations, power) and the
        # (microversion, admin) they were rendered for are the same: a list re-renders only what changed.
        self._cache: dict[str, tuple[tuple[Any, ...], str]] = {}

    def routes(self) -> list[Route]:
        return [Route("GET", V, self.index), Route("GET", f"{V}/detail", self.detail), Route("POST", V, self.create),
                Route("GET", f"{V}/{{server_id}}", self.show), Route("PUT", f"{V}/{{server_id}}", self.update),
                Route("DELETE", f"{V}/{{server_id}}", self.delete)]

    def _admin(self, request: web.Request) -> bool:
        return self.svc.allowed(ctx(request), "os_compute_api:os-extended-server-attributes")

    def _next(self, request: web.Request, rows: list, kind: str) -> list[dict[str, str]]:  # type: ignore[type-arg]
        limit = request.query.get("limit")
        if rows and limit is not None and limit.isdigit() and len(rows) == int(limit):
            return [{"rel": "next", "href": f"{base(request)}/servers{kind}?limit={limit}&marker={rows[-1].id}"}]
        return []

    async def index(self, request: web.Request) -> web.Response:
        rows = self.svc.servers.list(ctx(request), dict(request.query), detail=False)
        out: dict[str, Any] = {"servers": [views.server_brief(r, base(request)) for r in rows]}
        if nxt := self._next(request, rows, ""):
            out["servers_links"] = nxt
        return json_response(out)

    async def detail(self, request: web.Request) -> web.Response:
        c, v, b, admin = ctx(request), version(request), base(request), self._admin(request)
        rows = self.svc.servers.list(c, dict(request.query), detail=True)
        keys = {r.id: (r.updated_at, r.generation, r.observed_generation, r.power_state, v, admin, b) for r in rows}
        missing = [i for i, k in keys.items() if (hit := self._cache.get(i)) is None or hit[0] != k]
        if missing:
            if len(self._cache) + len(missing) > CACHE_MAX:
                self._cache.clear()
            for iid, inst in self.svc.servers.load(missing).items():
                self._cache[iid] = (keys[iid], dumps(views.server(inst, b, v, c, admin)))
        # The body is joined from cached JSON fragments: serializing 1,000 servers anew is most of the cost.
        text = '{"servers":[' + ",".join(self._cache[r.id][1] for r in rows if r.id in self._cache) + "]"
        if nxt := self._next(request, rows, "/detail"):
            text += ',"servers_links":' + dumps(nxt)
        return web.Response(text=text + "}", content_type="application/json")

    async def show(self, request: web.Request) -> web.Response:
        c = ctx(request)
        inst = self.svc.servers.get(c, mid(request, "server_id"))
        return json_response({"server": views.server(inst, base(request), version(request), c,
                                                     self._admin(request))})

    async def create(self, request: web.Request) -> web.Response:
        v = version(request)
        raw = await read_json(request, schemas.SERVER_CREATE)
        body = raw["server"]
        hints = raw.get("os:scheduler_hints") or raw.get("OS-SCH-HNT:scheduler_hints") or {}
        if v < views.V(2, 37) and isinstance(body.get("networks"), str):
            raise errors.BadRequest("Invalid input for field/attribute networks: must be a list before 2.37")
        for key, since in (("description", (2, 19)), ("tags", (2, 52)), ("hostname", (2, 90)),
                           ("host", (2, 74)), ("hypervisor_hostname", (2, 74))):
            if key in body and v < views.V(*since):
                raise errors.BadRequest(f"Invalid input for field/attribute server: '{key}' was unexpected")
        if "personality" in body and v >= views.V(2, 57):
            raise errors.BadRequest("Invalid input for field/attribute server: 'personality' was unexpected")
        rows, password = self.svc.servers.create(ctx(request), body, hints, v, rid(request))
        if len(rows) > 1 and str(body.get("return_reservation_id", "")).lower() == "true":
            return json_response({"reservation_id": rows[0].reservation_id}, status=202)
        first = rows[0]
        server = {"id": first.id, "links": views.links(base(request), "servers", first.id),
                  "OS-DCF:diskConfig": first.doc.get("disk_config", "MANUAL"),
                  "security_groups": [{"name": n} for n in first.security_groups], "adminPass": password}
        return json_response({"server": server}, status=202,
                             headers={"Location": f"{base(request)}/servers/{first.id}"})

    async def update(self, request: web.Request) -> web.Response:
        c, v = ctx(request), version(request)
        body = (await read_json(request, schemas.SERVER_UPDATE))["server"]
        if "description" in body and v < views.V(2, 19):
            raise errors.BadRequest("Invalid input for field/attribute server: 'description' was unexpected")
        inst = self.svc.servers.update(c, mid(request, "server_id"), body)
        server = views.server(inst, base(request), v, c, self._admin(request))
        return json_response({"server": views.basic_before_275(server, v)})

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.servers.delete(ctx(request), mid(request, "server_id"), rid(request))
        return empty(204)
