"""``/v2/images/{id}/members``: sharing an image with other projects."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.image import schemas, views
from tinystack.image.service import ImageService


class MembersAPI:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        base = "/v2/images/{image_id}/members"
        return [
            Route("GET", base, self.index),
            Route("POST", base, self.create),
            Route("GET", base + "/{member_id}", self.show),
            Route("PUT", base + "/{member_id}", self.update),
            Route("DELETE", base + "/{member_id}", self.delete),
        ]

    async def index(self, request: web.Request) -> web.Response:
        return json_response(views.members(self.svc.members.list_members(ctx(request), request.match_info["image_id"])))

    async def create(self, request: web.Request) -> web.Response:
        doc = await read_json(request, schemas.MEMBER_CREATE)
        member = await self.svc.members.add(ctx(request), request.match_info["image_id"], doc["member"])
        return json_response(views.member(member))

    async def show(self, request: web.Request) -> web.Response:
        member = self.svc.members.get(ctx(request), request.match_info["image_id"], request.match_info["member_id"])
        return json_response(views.member(member))

    async def update(self, request: web.Request) -> web.Response:
        doc = await read_json(request, schemas.MEMBER_UPDATE)
        member = await self.svc.members.update(ctx(request), request.match_info["image_id"],
                                         request.match_info["member_id"], doc["status"])
        return json_response(views.member(member))

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.members.delete(ctx(request), request.match_info["image_id"], request.match_info["member_id"])
        return empty()
