"""``/messages`` (3.3+): the asynchronous errors recorded for the caller's project; list, show, delete."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, Version, ctx, empty, json_response
from tinystack.volume import views
from tinystack.volume.api.attachments import since
from tinystack.volume.api.common import base, both, next_links, query
from tinystack.volume.messages import user_message
from tinystack.volume.service import VolumeService

MESSAGES = Version(3, 3)


class MessagesAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [*both("GET", "/messages", self.index), *both("GET", "/messages/{message_id}", self.show),
                *both("DELETE", "/messages/{message_id}", self.delete)]

    async def index(self, request: web.Request) -> web.Response:
        since(request, MESSAGES)
        rows = await self.svc.call(self.svc.messages.list, ctx(request), query(request))
        out = {"messages": [views.message(m, user_message(m.event_id), base=base(request)) for m in rows]}
        limit = request.query.get("limit")
        out.update(next_links(request, "messages", rows[-1].id if rows else None,
                              bool(limit and limit.isdigit() and len(rows) == int(limit))))
        return json_response(out)

    async def show(self, request: web.Request) -> web.Response:
        since(request, MESSAGES)
        m = await self.svc.call(self.svc.messages.get, ctx(request), request.match_info["message_id"])
        return json_response({"message": views.message(m, user_message(m.event_id), base=base(request))})

    async def delete(self, request: web.Request) -> web.Response:
        since(request, MESSAGES)
        await self.svc.call(self.svc.messages.delete, ctx(request), request.match_info["message_id"])
        return empty(204)
