"""``/snapshots``: create, list (summary and detail), show, update, delete, metadata and admin actions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json, validate, version
from tinystack.volume import schemas, views
from tinystack.volume.api import metadata
from tinystack.volume.api.common import both, next_links, query
from tinystack.volume.service import VolumeService

V = views.V


class SnapshotsAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [*both("GET", "/snapshots", self.index), *both("GET", "/snapshots/detail", self.detail),
                *both("POST", "/snapshots", self.create), *both("GET", "/snapshots/{snapshot_id}", self.show),
                *both("PUT", "/snapshots/{snapshot_id}", self.update),
                *both("DELETE", "/snapshots/{snapshot_id}", self.delete),
                *both("POST", "/snapshots/{snapshot_id}/action", self.action),
                *metadata.routes(self.svc, "snapshots", "snapshot_id", self.svc.snapshots.metadata)]

    async def _list(self, request: web.Request, extended: bool) -> web.Response:
        q = query(request)
        rows, more = await self.svc.call(self.svc.snapshots.list, ctx(request), q)
        v = version(request)
        out: dict[str, Any] = {"snapshots": [views.snapshot(r, v, extended=extended) for r in rows]}
        out.update(next_links(request, "snapshots", rows[-1].id if rows else None, more))
        if v >= V(3, 45) and "with_count" in q:
            out["count"] = len(rows)
        return json_response(out)

    async def index(self, request: web.Request) -> web.Response:
        return await self._list(request, extended=False)

    async def detail(self, request: web.Request) -> web.Response:
        return await self._list(request, extended=True)

    async def show(self, request: web.Request) -> web.Response:
        snap = await self.svc.call(self.svc.snapshots.get, ctx(request), request.match_info["snapshot_id"])
        return json_response({"snapshot": views.snapshot(snap, version(request), extended=True)})

    async def create(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.SNAPSHOT_CREATE))["snapshot"]
        snap = await self.svc.call(self.svc.snapshots.create, ctx(request), body,
                                   in_use_without_force=version(request) >= V(3, 66))
        return json_response({"snapshot": views.snapshot(snap, version(request), extended=False)}, status=202)

    async def update(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.SNAPSHOT_UPDATE))["snapshot"]
        snap = await self.svc.call(self.svc.snapshots.update, ctx(request), request.match_info["snapshot_id"], body)
        return json_response({"snapshot": views.snapshot(snap, version(request), extended=False)})

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.call(self.svc.snapshots.delete, ctx(request), request.match_info["snapshot_id"])
        return empty(202)

    async def action(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Invalid request body: exactly one action is expected.")
        name, args = next(iter(body.items()))
        sid = request.match_info["snapshot_id"]
        if name not in schemas.SNAPSHOT_ACTIONS:
            raise errors.BadRequest(f"Invalid request body: unknown snapshot action {name!r}.")
        validate(args, schemas.SNAPSHOT_ACTIONS[name])
        if name == "os-reset_status":
            await self.svc.call(self.svc.snapshots.reset_status, ctx(request), sid, args["status"])
        else:
            await self.svc.call(self.svc.snapshots.delete, ctx(request), sid, force=True)
        return empty(202)
