"""What clients ask before they act: ``capabilities/{host}`` (admin), ``resource_filters`` (3.33) and the
per-project default types (``/default-types``, 3.62)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, Version, ctx, empty, json_response, read_json
from tinystack.volume.api.attachments import since
from tinystack.volume.api.common import both
from tinystack.volume.listing import RESOURCE_FILTERS
from tinystack.volume.models import DefaultType
from tinystack.volume.service import VolumeService

DEFAULT_TYPES = Version(3, 62)
DEFAULT_TYPE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"default_type": {"type": "object", "properties": {
        "volume_type": {"type": "string", "minLength": 1, "maxLength": 255}},
        "required": ["volume_type"], "additionalProperties": False}},
    "required": ["default_type"],
    "additionalProperties": False,
}


def default_view(row: DefaultType) -> dict[str, Any]:
    return {"project_id": row.project_id, "volume_type_id": row.volume_type_id}


class DiscoveryAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        d = "/default-types/{target_project_id}"
        return [*both("GET", "/capabilities/{host}", self.capabilities),
                *both("GET", "/resource_filters", self.resource_filters),
                *both("GET", "/default-types", self.defaults), *both("GET", d, self.default_show),
                *both("PUT", d, self.default_set), *both("DELETE", d, self.default_unset)]

    async def capabilities(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "volume_extension:capabilities")
        return json_response(self.svc.capabilities(request.match_info["host"]))

    async def resource_filters(self, request: web.Request) -> web.Response:
        """No policy rule, as in Cinder: a static document about this cloud's list filters."""
        since(request, Version(3, 33))
        wanted = request.query.get("resource")
        rows = [{"resource": k, "filters": v} for k, v in RESOURCE_FILTERS.items() if wanted in (None, k)]
        return json_response({"resource_filters": rows})

    async def defaults(self, request: web.Request) -> web.Response:
        since(request, DEFAULT_TYPES)
        rows = await self.svc.call(self.svc.default_types.list, ctx(request))
        return json_response({"default_types": [default_view(r) for r in rows]})

    async def default_show(self, request: web.Request) -> web.Response:
        since(request, DEFAULT_TYPES)
        row = await self.svc.call(self.svc.default_types.get, ctx(request), request.match_info["target_project_id"])
        return json_response({"default_type": default_view(row)})

    async def default_set(self, request: web.Request) -> web.Response:
        since(request, DEFAULT_TYPES)
        body = (await read_json(request, DEFAULT_TYPE_BODY))["default_type"]
        if not body["volume_type"].strip():
            raise errors.BadRequest("Invalid input received: volume_type must not be blank.")
        row = await self.svc.call(self.svc.default_types.set, ctx(request), request.match_info["target_project_id"],
                                  body["volume_type"])
        return json_response({"default_type": default_view(row)})

    async def default_unset(self, request: web.Request) -> web.Response:
        since(request, DEFAULT_TYPES)
        await self.svc.call(self.svc.default_types.unset, ctx(request), request.match_info["target_project_id"])
        return empty(204)
