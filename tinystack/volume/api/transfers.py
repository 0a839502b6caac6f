"""Volume transfers: ``/os-volume-transfer`` and, since 3.55 (with ``no_snapshots``), ``/volume-transfers``."""

from __future__ import annotations

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, Version, ctx, empty, json_response, read_json, version
from tinystack.volume import schemas, views
from tinystack.volume.api.common import base, both
from tinystack.volume.schemas import truthy
from tinystack.volume.service import VolumeService

NEW = Version(3, 55)


class TransfersAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        out: list[Route] = []
        for kind in ("os-volume-transfer", "volume-transfers"):
            one = f"/{kind}/{{transfer_id}}"
            out += [*both("GET", f"/{kind}", self.index), *both("GET", f"/{kind}/detail", self.detail),
                    *both("POST", f"/{kind}", self.create), *both("GET", one, self.show),
                    *both("DELETE", one, self.delete), *both("POST", f"{one}/accept", self.accept)]
        return out

    @staticmethod
    def kind(request: web.Request) -> str:
        """The collection asked for; ``volume-transfers`` exists from 3.55."""
        kind = "volume-transfers" if "/volume-transfers" in request.path else "os-volume-transfer"
        if kind == "volume-transfers" and version(request) < NEW:
            raise errors.NotFound("The resource could not be found.")
        return kind

    async def _list(self, request: web.Request, *, detail: bool) -> web.Response:
        kind = self.kind(request)
        q = request.query
        all_projects = truthy(q.get("all_tenants", q.get("all_projects", "false")) or "false")
        rows = await self.svc.call(self.svc.transfers.list, ctx(request), all_projects, q.get("name"))
        return json_response({"transfers": [views.transfer(t, version(request), base=base(request), kind=kind,
                                                           detail=detail) for t in rows]})

    async def index(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=False)

    async def detail(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=True)

    async def show(self, request: web.Request) -> web.Response:
        kind = self.kind(request)
        t = await self.svc.call(self.svc.transfers.get, ctx(request), request.match_info["transfer_id"])
        return json_response({"transfer": views.transfer(t, version(request), base=base(request), kind=kind,
                                                         detail=True)})

    async def create(self, request: web.Request) -> web.Response:
        kind = self.kind(request)
        body = (await read_json(request, schemas.TRANSFER_CREATE))["transfer"]
        if "no_snapshots" in body and version(request) < NEW:
            raise errors.BadRequest("Invalid input received: no_snapshots needs microversion 3.55 or later.")
        t, key = await self.svc.call(self.svc.transfers.create, ctx(request), body["volume_id"], body.get("name"),
                                     truthy(body.get("no_snapshots", False)))
        out = views.transfer(t, version(request), base=base(request), kind=kind, detail=True)
        return json_response({"transfer": {**out, "auth_key": key}}, status=202)

    async def delete(self, request: web.Request) -> web.Response:
        self.kind(request)
        await self.svc.call(self.svc.transfers.delete, ctx(request), request.match_info["transfer_id"])
        return empty(202)

    async def accept(self, request: web.Request) -> web.Response:
        kind = self.kind(request)
        body = (await read_json(request, schemas.TRANSFER_ACCEPT))["accept"]
        t = await self.svc.call(self.svc.transfers.accept, ctx(request), request.match_info["transfer_id"],
                                body["auth_key"])
        return json_response({"transfer": views.transfer(t, version(request), base=base(request), kind=kind,
                                                         detail=False)}, status=202)
