"""``/limits``, ``/os-quota-sets``, ``/os-quota-class-sets`` and ``/os-availability-zone``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.compute import schemas, views
from tinystack.compute.api.common import mid
from tinystack.compute.quotas import LEGACY_NETWORK, RESOURCES
from tinystack.compute.service import ComputeService
from tinystack.core.web import Route, ctx, empty, json_response, read_json, version

_INJECTED = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")


def _shape(values: dict[str, Any], v: views.Version) -> dict[str, Any]:
    out = {k: values[k] for k in RESOURCES if k in values}
    if v < views.V(2, 36):
        out.update({k: values.get(k, default) for k, default in LEGACY_NETWORK.items()})
    if v >= views.V(2, 57):
        for k in _INJECTED:
            out.pop(k, None)
    return out


class LimitsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        q = "/v2.1/os-quota-sets/{project_id}"
        return [
            Route("GET", "/v2.1/limits", self.limits),
            Route("GET", q, self.show), Route("PUT", q, self.update), Route("DELETE", q, self.revert),
            Route("GET", f"{q}/defaults", self.defaults), Route("GET", f"{q}/detail", self.detail),
            Route("GET", "/v2.1/os-quota-class-sets/{name}", self.class_show),
            Route("PUT", "/v2.1/os-quota-class-sets/{name}", self.class_update),
            Route("GET", "/v2.1/os-availability-zone", self.zones),
            Route("GET", "/v2.1/os-availability-zone/detail", self.zones_detail),
        ]

    async def limits(self, request: web.Request) -> web.Response:
        v = version(request)
        c = ctx(request)
        self.svc.enforce(c, "os_compute_api:limits")
        project = request.query.get("tenant_id") if c.is_admin else None
        absolute = self.svc.quotas.absolute_limits(c, project)
        if v >= views.V(2, 36):
            for k in ("maxSecurityGroups", "maxSecurityGroupRules", "maxTotalFloatingIps", "totalFloatingIpsUsed",
                      "totalSecurityGroupsUsed"):
                absolute.pop(k)
        if v >= views.V(2, 39):
            absolute.pop("maxImageMeta")
        if v >= views.V(2, 57):
            absolute.pop("maxPersonality")
            absolute.pop("maxPersonalitySize")
        return json_response({"limits": {"rate": [], "absolute": absolute}})

    async def show(self, request: web.Request) -> web.Response:
        pid = mid(request, "project_id")
        values = self.svc.quotas.show(ctx(request), pid)
        return json_response({"quota_set": {"id": pid, **_shape(values, version(request))}})

    async def detail(self, request: web.Request) -> web.Response:
        pid = mid(request, "project_id")
        values = self.svc.quotas.detail(ctx(request), pid)
        shaped = _shape(values, version(request))
        for k, val in list(shaped.items()):
            if not isinstance(val, dict):
                shaped[k] = {"limit": val, "in_use": 0, "reserved": 0}
        return json_response({"quota_set": {"id": pid, **shaped}})

    async def defaults(self, request: web.Request) -> web.Response:
        pid = mid(request, "project_id")
        self.svc.enforce(ctx(request), "os_compute_api:os-quota-sets:defaults")
        return json_response({"quota_set": {"id": pid, **_shape(self.svc.quotas.defaults(ctx(request)),
                                                                version(request))}})

    async def update(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.QUOTA_UPDATE))["quota_set"]
        force = schemas.as_bool(body.pop("force", False))
        known = set(RESOURCES) | set(LEGACY_NETWORK)
        unknown = set(body) - known
        if unknown:
            from tinystack.core import errors

            raise errors.BadRequest(f"Bad key(s) {', '.join(sorted(unknown))} in quota_set")
        values = {k: int(v) for k, v in body.items() if k in RESOURCES}
        out = self.svc.quotas.update(ctx(request), mid(request, "project_id"), values, force)
        return json_response({"quota_set": _shape(out, version(request))})

    async def revert(self, request: web.Request) -> web.Response:
        self.svc.quotas.revert(ctx(request), mid(request, "project_id"))
        return empty(202)

    async def class_show(self, request: web.Request) -> web.Response:
        name = mid(request, "name")
        self.svc.enforce(ctx(request), "os_compute_api:os-quota-class-sets:show")
        return json_response({"quota_class_set": {"id": name, **_shape(self.svc.quotas.defaults(ctx(request)),
                                                                       version(request))}})

    async def class_update(self, request: web.Request) -> web.Response:
        body = await read_json(request, {"type": "object", "required": ["quota_class_set"], "properties": {
            "quota_class_set": {"type": "object", "additionalProperties": {"type": ["integer", "string"],
                                                                           "pattern": "^-?[0-9]+$"}}}})
        values = {k: int(v) for k, v in body["quota_class_set"].items() if k in RESOURCES}
        out = self.svc.quotas.update_class(ctx(request), mid(request, "name"), values)
        return json_response({"quota_class_set": _shape(out, version(request))})

    async def zones(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "os_compute_api:os-availability-zone:list")
        return json_response({"availabilityZoneInfo": self.svc.admin.zones(ctx(request), detail=False)})

    async def zones_detail(self, request: web.Request) -> web.Response:
        return json_response({"availabilityZoneInfo": self.svc.admin.zones(ctx(request), detail=True)})
