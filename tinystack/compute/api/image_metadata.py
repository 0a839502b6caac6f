"""Nova's image metadata proxy (``/v2.1/images/{id}/metadata``, before microversion 2.39): an image's custom
properties read and written through the image service, with the caller's own rights there."""

from __future__ import annotations

from aiohttp import web

from tinystack.compute import views
from tinystack.compute.api.common import mid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json, version

V = "/v2.1/images/{image_id}/metadata"
_META = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255},
         "propertyNames": {"minLength": 1, "maxLength": 255}}
_ALL = {"type": "object", "required": ["metadata"], "properties": {"metadata": _META}, "additionalProperties": False}
_ONE = {"type": "object", "required": ["meta"], "additionalProperties": False,
        "properties": {"meta": {**_META, "minProperties": 1, "maxProperties": 1}}}


class ImageMetadataAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("GET", V, self.index), Route("POST", V, self.merge), Route("PUT", V, self.replace),
                Route("GET", f"{V}/{{key}}", self.show), Route("PUT", f"{V}/{{key}}", self.put),
                Route("DELETE", f"{V}/{{key}}", self.delete)]

    def _props(self, request: web.Request) -> dict[str, str]:
        if version(request) >= views.V(2, 39):
            raise errors.NotFound("The resource could not be found.")
        image = self.svc.service("image").get(ctx(request), mid(request, "image_id"))
        return {p.name: p.value for p in image.properties}

    async def _update(self, request: web.Request, set_: dict[str, str], remove: list[str] | None = None) -> dict[str, str]:
        image = await self.svc.service("image").update_properties(ctx(request), mid(request, "image_id"), set_, remove or [])
        return {p.name: p.value for p in image.properties}

    async def index(self, request: web.Request) -> web.Response:
        return json_response({"metadata": self._props(request)})

    async def show(self, request: web.Request) -> web.Response:
        key = mid(request, "key")
        props = self._props(request)
        if key not in props:
            raise errors.NotFound(f"Image {mid(request, 'image_id')} has no metadata item {key}.")
        return json_response({"meta": {key: props[key]}})

    async def merge(self, request: web.Request) -> web.Response:
        self._props(request)
        body = await read_json(request, _ALL)
        return json_response({"metadata": await self._update(request, body["metadata"])})

    async def replace(self, request: web.Request) -> web.Response:
        current = self._props(request)
        body = await read_json(request, _ALL)
        new = body["metadata"]
        return json_response({"metadata": await self._update(request, new, [k for k in current if k not in new])})

    async def put(self, request: web.Request) -> web.Response:
        self._props(request)
        body = await read_json(request, _ONE)
        key = mid(request, "key")
        if key not in body["meta"]:
            raise errors.BadRequest("Request body and URI mismatch")
        props = await self._update(request, {key: body["meta"][key]})
        return json_response({"meta": {key: props.get(key, body["meta"][key])}})

    async def delete(self, request: web.Request) -> web.Response:
        key = mid(request, "key")
        if key not in self._props(request):
            raise errors.NotFound(f"Image {mid(request, 'image_id')} has no metadata item {key}.")
        await self._update(request, {}, [key])
        return empty(204)
