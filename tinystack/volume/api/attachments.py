"""``/attachments`` (3.27+; ``os-complete`` 3.44, ``mode`` 3.54): what Nova calls to attach volumes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, Version, ctx, json_response, read_json, validate, version
from tinystack.volume import schemas, views
from tinystack.volume.api.common import both, next_links, query
from tinystack.volume.service import VolumeService


def since(request: web.Request, v: Version) -> None:
    """Cinder answers a route below its microversion as if it did not exist."""
    if version(request) < v:
        raise errors.NotFound("The resource could not be found.")


class AttachmentsAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        one = "/attachments/{attachment_id}"
        return [*both("GET", "/attachments", self.index), *both("GET", "/attachments/detail", self.detail),
                *both("POST", "/attachments", self.create), *both("GET", one, self.show),
                *both("PUT", one, self.update), *both("DELETE", one, self.delete),
                *both("POST", f"{one}/action", self.action)]

    async def _list(self, request: web.Request, *, detail: bool) -> web.Response:
        since(request, Version(3, 27))
        rows = await self.svc.call(self.svc.attachment_records.list, ctx(request), query(request))
        out: dict[str, Any] = {"attachments": [views.attachment_record(a, info, detail=detail) for a, info in rows]}
        limit = request.query.get("limit")
        out.update(next_links(request, "attachments", rows[-1][0].id if rows else None,
                              bool(limit and limit.isdigit() and len(rows) == int(limit))))
        return json_response(out)

    async def index(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=False)

    async def detail(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=True)

    async def show(self, request: web.Request) -> web.Response:
        since(request, Version(3, 27))
        att, info = await self.svc.call(self.svc.attachment_records.get, ctx(request),
                                        request.match_info["attachment_id"])
        return json_response({"attachment": views.attachment_record(att, info, detail=True)})

    async def create(self, request: web.Request) -> web.Response:
        since(request, Version(3, 27))
        body = (await read_json(request, schemas.ATTACHMENT_CREATE))["attachment"]
        if "mode" in body and version(request) < Version(3, 54):
            raise errors.BadRequest("Invalid input received: mode needs microversion 3.54 or later.")
        att, info = await self.svc.call(self.svc.attachment_records.create, ctx(request), body["volume_uuid"],
                                        body.get("instance_uuid"), body.get("connector"), body.get("mode"))
        return json_response({"attachment": views.attachment_record(att, info, detail=True)})

    async def update(self, request: web.Request) -> web.Response:
        since(request, Version(3, 27))
        body = (await read_json(request, schemas.ATTACHMENT_UPDATE))["attachment"]
        att, info = await self.svc.call(self.svc.attachment_records.update, ctx(request),
                                        request.match_info["attachment_id"], body["connector"])
        return json_response({"attachment": views.attachment_record(att, info, detail=True)})

    async def delete(self, request: web.Request) -> web.Response:
        since(request, Version(3, 27))
        left = await self.svc.call(self.svc.attachment_records.delete, ctx(request),
                                   request.match_info["attachment_id"])
        return json_response({"attachments": [views.attachment_record(a, None, detail=False) for a in left]})

    async def action(self, request: web.Request) -> web.Response:
        since(request, Version(3, 44))
        body = await read_json(request)
        if not isinstance(body, dict) or list(body) != ["os-complete"]:
            raise errors.BadRequest("Invalid request body: the only attachment action is os-complete.")
        validate(body["os-complete"], {"type": ["string", "object", "null"]})
        await self.svc.call(self.svc.attachment_records.complete, ctx(request), request.match_info["attachment_id"])
        return web.Response(status=204)
