"""``/flavors``: list, detail, show, admin create/update/delete, extra specs and access lists."""

from __future__ import annotations

from aiohttp import web

from tinystack.compute import schemas, views
from tinystack.compute.api.common import base, mid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, paginate, query_int, read_json, version

V = "/v2.1/flavors"


class FlavorsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("GET", V, self.index), Route("GET", f"{V}/detail", self.detail), Route("POST", V, self.create),
            Route("GET", f"{V}/{{flavor_id}}", self.show), Route("PUT", f"{V}/{{flavor_id}}", self.update),
            Route("DELETE", f"{V}/{{flavor_id}}", self.delete),
            Route("GET", f"{V}/{{flavor_id}}/os-extra_specs", self.specs),
            Route("POST", f"{V}/{{flavor_id}}/os-extra_specs", self.set_specs),
            Route("GET", f"{V}/{{flavor_id}}/os-extra_specs/{{key}}", self.spec),
            Route("PUT", f"{V}/{{flavor_id}}/os-extra_specs/{{key}}", self.put_spec),
            Route("DELETE", f"{V}/{{flavor_id}}/os-extra_specs/{{key}}", self.delete_spec),
            Route("GET", f"{V}/{{flavor_id}}/os-flavor-access", self.access),
            Route("POST", f"{V}/{{flavor_id}}/action", self.action),
        ]

    def _list(self, request: web.Request) -> list:  # type: ignore[type-arg]
        q = request.query
        rows = self.svc.flavors.list(ctx(request), q.get("is_public"), query_int(request, "minDisk"),
                                     query_int(request, "minRam"), q.get("sort_key", "flavorid"),
                                     q.get("sort_dir", "asc"))
        return paginate(rows, query_int(request, "limit"), q.get("marker"), lambda f: f.id)

    async def index(self, request: web.Request) -> web.Response:
        v, b = version(request), base(request)
        return json_response({"flavors": [views.flavor(f, b, v, detail=False) for f in self._list(request)]})

    async def detail(self, request: web.Request) -> web.Response:
        v, b = version(request), base(request)
        return json_response({"flavors": [views.flavor(f, b, v) for f in self._list(request)]})

    async def show(self, request: web.Request) -> web.Response:
        fl = self.svc.flavors.get(ctx(request), mid(request, "flavor_id"))
        return json_response({"flavor": views.flavor(fl, base(request), version(request))})

    async def create(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.FLAVOR_CREATE))["flavor"]
        if "description" in body and version(request) < views.V(2, 55):
            raise errors.BadRequest("Invalid input for field/attribute flavor: 'description' was unexpected")
        for key in ("ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap"):
            if key in body and body[key] != "":
                try:
                    body[key] = int(body[key])
                except ValueError:
                    raise errors.BadRequest(f"Invalid input for field/attribute {key}.") from None
                if body[key] > 2**31 - 1:
                    raise errors.BadRequest(f"Invalid input for field/attribute {key}: too large.")
        if "rxtx_factor" in body:
            body["rxtx_factor"] = float(body["rxtx_factor"])
        if "os-flavor-access:is_public" in body:
            body["os-flavor-access:is_public"] = schemas.as_bool(body["os-flavor-access:is_public"])
        if body.get("id") is not None:
            body["id"] = str(body["id"])
        fl = self.svc.flavors.create(ctx(request), body)
        return json_response({"flavor": views.flavor(fl, base(request), version(request))})

    async def update(self, request: web.Request) -> web.Response:
        if version(request) < views.V(2, 55):
            raise errors.NotFound("The resource could not be found.")
        body = await read_json(request, {"type": "object", "required": ["flavor"], "properties": {"flavor": {
            "type": "object", "required": ["description"], "additionalProperties": False,
            "properties": {"description": {"type": ["string", "null"], "maxLength": 65535}}}}})
        fl = self.svc.flavors.update(ctx(request), mid(request, "flavor_id"), body["flavor"]["description"])
        return json_response({"flavor": views.flavor(fl, base(request), version(request))})

    async def delete(self, request: web.Request) -> web.Response:
        self.svc.flavors.delete(ctx(request), mid(request, "flavor_id"))
        return empty(202)

    async def specs(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "os_compute_api:os-flavor-extra-specs:index")
        return json_response({"extra_specs": self.svc.flavors.extra_specs(ctx(request), mid(request, "flavor_id"))})

    async def set_specs(self, request: web.Request) -> web.Response:
        body = await read_json(request, {"type": "object", "required": ["extra_specs"],
                                         "properties": {"extra_specs": {"type": "object"}}})
        out = self.svc.flavors.set_extra_specs(ctx(request), mid(request, "flavor_id"), body["extra_specs"])
        return json_response({"extra_specs": out})

    async def spec(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "os_compute_api:os-flavor-extra-specs:show")
        specs = self.svc.flavors.extra_specs(ctx(request), mid(request, "flavor_id"))
        key = mid(request, "key")
        if key not in specs:
            raise errors.NotFound(f"Flavor {mid(request, 'flavor_id')} has no extra specs with key {key}.")
        return json_response({key: specs[key]})

    async def put_spec(self, request: web.Request) -> web.Response:
        body = await read_json(request, {"type": "object", "minProperties": 1, "maxProperties": 1})
        key = mid(request, "key")
        if key not in body:
            raise errors.BadRequest("Request body and URI mismatch")
        out = self.svc.flavors.set_extra_specs(ctx(request), mid(request, "flavor_id"), body)
        return json_response(out)

    async def delete_spec(self, request: web.Request) -> web.Response:
        self.svc.flavors.delete_extra_spec(ctx(request), mid(request, "flavor_id"), mid(request, "key"))
        return empty(200)

    @staticmethod
    def _access(fid: str, projects: list[str]) -> web.Response:
        return json_response({"flavor_access": [{"flavor_id": fid, "tenant_id": p} for p in projects]})

    async def access(self, request: web.Request) -> web.Response:
        fid = mid(request, "flavor_id")
        return self._access(fid, self.svc.flavors.access(ctx(request), fid))

    async def action(self, request: web.Request) -> web.Response:
        body = await read_json(request, {"type": "object", "minProperties": 1, "maxProperties": 1})
        fid = mid(request, "flavor_id")
        if "addTenantAccess" in body:
            projects = self.svc.flavors.add_access(ctx(request), fid, str(body["addTenantAccess"].get("tenant", "")))
        elif "removeTenantAccess" in body:
            projects = self.svc.flavors.remove_access(ctx(request), fid,
                                                      str(body["removeTenantAccess"].get("tenant", "")))
        else:
            raise errors.BadRequest(f"Unknown flavor action {next(iter(body))!r}")
        return self._access(fid, projects)
