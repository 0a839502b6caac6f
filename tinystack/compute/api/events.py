"""``POST /os-server-external-events``: other services' news about servers (admin only; events.py)."""

from __future__ import annotations

from aiohttp import web

from tinystack.compute import schemas
from tinystack.compute.api.common import rid
from tinystack.compute.events import POLICY
from tinystack.compute.service import ComputeService
from tinystack.core.web import Route, ctx, json_response, read_json, version


class ExternalEventsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("POST", "/v2.1/os-server-external-events", self.create)]

    async def create(self, request: web.Request) -> web.Response:
        # Policy before the body: a member learns nothing about what a valid body would be.
        self.svc.enforce(ctx(request), POLICY, {})
        v = version(request)
        body = await read_json(request, schemas.external_events((v.major, v.minor)))
        code, events = await self.svc.external_events(ctx(request), rid(request), body["events"])
        return json_response({"events": events}, status=code)
