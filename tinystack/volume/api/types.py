"""``/types``: volume types, the default type, extra specs and access lists of private types."""

from __future__ import annotations

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.volume import schemas, views
from tinystack.volume.api.common import both
from tinystack.volume.service import VolumeService


class TypesAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        t = "/types/{type_id}"
        return [*both("GET", "/types", self.index), *both("POST", "/types", self.create),
                *both("GET", t, self.show), *both("PUT", t, self.update), *both("DELETE", t, self.delete),
                *both("GET", f"{t}/extra_specs", self.specs), *both("POST", f"{t}/extra_specs", self.specs_set),
                *both("GET", f"{t}/extra_specs/{{key}}", self.spec),
                *both("PUT", f"{t}/extra_specs/{{key}}", self.spec_set),
                *both("DELETE", f"{t}/extra_specs/{{key}}", self.spec_delete),
                *both("GET", f"{t}/os-volume-type-access", self.access_list),
                *both("POST", f"{t}/action", self.action)]

    def _id(self, request: web.Request) -> str:
        return request.match_info["type_id"]

    async def index(self, request: web.Request) -> web.Response:
        rows = await self.svc.call(self.svc.types.list, ctx(request), request.query.get("is_public"))
        admin = ctx(request).is_admin
        return json_response({"volume_types": [views.volume_type(t, show_specs=admin) for t in rows]})

    async def show(self, request: web.Request) -> web.Response:
        t = await self.svc.call(self.svc.types.get, ctx(request), self._id(request))
        return json_response({"volume_type": views.volume_type(t, show_specs=ctx(request).is_admin)})

    async def create(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.TYPE_CREATE))["volume_type"]
        return json_response({"volume_type": views.volume_type(await self.svc.call(self.svc.types.create, ctx(request),
                                                                                    body))})

    async def update(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.TYPE_UPDATE))["volume_type"]
        t = await self.svc.call(self.svc.types.update, ctx(request), self._id(request), body)
        return json_response({"volume_type": views.volume_type(t)})

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.call(self.svc.types.delete, ctx(request), self._id(request))
        return empty(202)

    async def specs(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "volume_extension:types_extra_specs:index")
        t = await self.svc.call(self.svc.types.get, ctx(request), self._id(request))
        return json_response({"extra_specs": dict(t.extra_specs or {})})

    async def specs_set(self, request: web.Request) -> web.Response:
        specs = (await read_json(request, schemas.EXTRA_SPECS_BODY))["extra_specs"]
        return json_response({"extra_specs": await self.svc.call(self.svc.types.set_specs, ctx(request),
                                                                 self._id(request), specs)})

    async def spec(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        t = await self.svc.call(self.svc.types.get, ctx(request), self._id(request))
        if key not in (t.extra_specs or {}):
            raise errors.NotFound(f"Volume Type {t.id} has no extra specs with key {key}.")
        return json_response({key: t.extra_specs[key]})

    async def spec_set(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        body = await read_json(request, {"type": "object", "minProperties": 1, "maxProperties": 1,
                                         "additionalProperties": {"type": "string", "maxLength": 255}})
        if key not in body:
            raise errors.BadRequest("Request body and URI mismatch.")
        await self.svc.call(self.svc.types.set_specs, ctx(request), self._id(request), {key: body[key]})
        return json_response({key: body[key]})

    async def spec_delete(self, request: web.Request) -> web.Response:
        await self.svc.call(self.svc.types.delete_spec, ctx(request), self._id(request), request.match_info["key"])
        return empty(202)

    async def access_list(self, request: web.Request) -> web.Response:
        tid = self._id(request)
        projects = await self.svc.call(self.svc.types.access, ctx(request), tid, None, None)
        return json_response({"volume_type_access": [{"volume_type_id": tid, "project_id": p} for p in projects]})

    async def action(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        for name, add in (("addProjectAccess", True), ("removeProjectAccess", False)):
            if isinstance(body, dict) and isinstance(body.get(name), dict) and body[name].get("project"):
                await self.svc.call(self.svc.types.access, ctx(request), self._id(request), str(body[name]["project"]),
                                    add)
                return empty(202)
        raise errors.BadRequest("Invalid request body: addProjectAccess or removeProjectAccess with a project.")
