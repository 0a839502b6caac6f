"""``/os-keypairs``: generate or import, list, show, delete (per user)."""

from __future__ import annotations

from aiohttp import web

from tinystack.compute import schemas, views
from tinystack.compute.api.common import mid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, paginate, query_int, read_json, version

V = "/v2.1/os-keypairs"


class KeypairsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("GET", V, self.index), Route("POST", V, self.create),
                Route("GET", f"{V}/{{name}}", self.show), Route("DELETE", f"{V}/{{name}}", self.delete)]

    def _user(self, request: web.Request) -> str | None:
        return request.query.get("user_id") if version(request) >= views.V(2, 10) else None

    async def index(self, request: web.Request) -> web.Response:
        rows = self.svc.keypairs.list(ctx(request), self._user(request))
        v = version(request)
        if v >= views.V(2, 35):
            rows = paginate(rows, query_int(request, "limit"), request.query.get("marker"), lambda k: k.name)
        return json_response({"keypairs": [{"keypair": views.keypair(k, v, detail=False)} for k in rows]})

    async def show(self, request: web.Request) -> web.Response:
        kp = self.svc.keypairs.get(ctx(request), mid(request, "name"), self._user(request))
        return json_response({"keypair": views.keypair(kp, version(request))})

    async def create(self, request: web.Request) -> web.Response:
        v = version(request)
        body = (await read_json(request, schemas.KEYPAIR_CREATE))["keypair"]
        if "type" in body and v < views.V(2, 2):
            raise errors.BadRequest("Invalid input for field/attribute keypair: 'type' was unexpected")
        if "user_id" in body and v < views.V(2, 10):
            raise errors.BadRequest("Invalid input for field/attribute keypair: 'user_id' was unexpected")
        if "public_key" not in body and v >= views.V(2, 92):
            raise errors.BadRequest("Invalid input for field/attribute keypair: 'public_key' is a required property")
        kp, private = self.svc.keypairs.create(ctx(request), body["name"], body.get("public_key"),
                                               body.get("type", "ssh"), body.get("user_id"))
        out = views.keypair(kp, v, detail=False)
        out["user_id"] = kp.user_id
        if private is not None:
            out["private_key"] = private
        return json_response({"keypair": out}, status=201 if v >= views.V(2, 2) else 200)

    async def delete(self, request: web.Request) -> web.Response:
        self.svc.keypairs.delete(ctx(request), mid(request, "name"), self._user(request))
        return empty(204 if version(request) >= views.V(2, 2) else 202)
