"""``/v2/images``: create, list, show, patch, delete, (de)activate, tags and tasks."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.web import REQUEST_ID, Route, ctx, empty, json_response, read_json
from tinystack.image import locations, patch, views
from tinystack.image.api.common import base_url
from tinystack.image.api.faults import glance_fault
from tinystack.image.models import Image
from tinystack.image.service import ImageService


class ImagesAPI:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v2/images", self.index),
            Route("POST", "/v2/images", self.create),
            Route("GET", "/v2/images/{image_id}", self.show),
            Route("PATCH", "/v2/images/{image_id}", self.update),
            Route("DELETE", "/v2/images/{image_id}", self.delete),
            Route("POST", "/v2/images/{image_id}/actions/deactivate", self.deactivate),
            Route("POST", "/v2/images/{image_id}/actions/reactivate", self.reactivate),
            Route("PUT", "/v2/images/{image_id}/tags/{tag}", self.add_tag),
            Route("DELETE", "/v2/images/{image_id}/tags/{tag}", self.delete_tag),
            Route("GET", "/v2/images/{image_id}/tasks", self.tasks),
            Route("POST", "/v2/images/{image_id}/locations", self.add_location),
            Route("GET", "/v2/images/{image_id}/locations", self.get_locations),
        ]

    def _render(self, c: RequestContext, image: Image, readable: views.ReadableCheck | None = None) -> dict[str, Any]:
        shown = locations.view(self.svc, image) if self.svc.shows_locations(c, image) else None
        return views.image(image, readable or self.svc.readable(c), shown)

    async def index(self, request: web.Request) -> web.Response:
        c = ctx(request)
        query = request.query
        images, next_marker = self.svc.list_images(c, query, lambda name: query.getall(name, []))
        readable = self.svc.readable(c)
        return json_response(views.images([self._render(c, i, readable) for i in images], list(query.items()),
                                          next_marker))

    async def create(self, request: web.Request) -> web.Response:
        c = ctx(request)
        image = await self.svc.create_async(c, await read_json(request))
        headers = {"Location": f"{base_url(request)}/v2/images/{image.id}",
                   "OpenStack-image-store-ids": ",".join(self.svc.stores)}
        if self.svc.settings.enabled_import_methods:
            headers["OpenStack-image-import-methods"] = ",".join(self.svc.settings.enabled_import_methods)
        return json_response(self._render(c, image), status=201, headers=headers)

    async def show(self, request: web.Request) -> web.Response:
        c = ctx(request)
        return json_response(self._render(c, self.svc.get(c, request.match_info["image_id"])))

    async def update(self, request: web.Request) -> web.Response:
        c = ctx(request)
        try:
            patch.media_version(request.content_type)
        except errors.UnsupportedMediaType as err:
            response = glance_fault(err, request[REQUEST_ID], request)
            response.headers["Accept-Patch"] = patch.ACCEPT_PATCH
            return response
        changes = patch.parse(request.content_type, await read_json(request))
        image = await self.svc.update(c, request.match_info["image_id"], changes)
        return json_response(self._render(c, image))

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.delete(ctx(request), request.match_info["image_id"])
        return empty()

    async def deactivate(self, request: web.Request) -> web.Response:
        await self.svc.set_active(ctx(request), request.match_info["image_id"], active=False)
        return empty()

    async def reactivate(self, request: web.Request) -> web.Response:
        await self.svc.set_active(ctx(request), request.match_info["image_id"], active=True)
        return empty()

    async def add_tag(self, request: web.Request) -> web.Response:
        await self.svc.add_tag(ctx(request), request.match_info["image_id"], request.match_info["tag"])
        return empty()

    async def delete_tag(self, request: web.Request) -> web.Response:
        await self.svc.delete_tag(ctx(request), request.match_info["image_id"], request.match_info["tag"])
        return empty()

    async def tasks(self, request: web.Request) -> web.Response:
        tasks = self.svc.tasks(ctx(request), request.match_info["image_id"])
        return json_response({"tasks": [views.task(t) for t in tasks]})

    async def add_location(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        await self.svc.locations.add(ctx(request), request.match_info["image_id"], body)
        return empty(202)

    async def get_locations(self, request: web.Request) -> web.Response:
        return json_response(self.svc.locations.listing(ctx(request), request.match_info["image_id"]))
