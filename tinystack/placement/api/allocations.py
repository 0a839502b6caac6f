"""Allocations by consumer (PUT/GET/DELETE, POST for several at once) and usages by project."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, read_json, version
from tinystack.placement import schemas, views
from tinystack.placement.allocations import ANY, ConsumerWrite
from tinystack.placement.api.common import at_least, check_query, require, respond, vtuple
from tinystack.placement.service import PlacementService


def _consumer(request: web.Request) -> str:
    raw = request.match_info["consumer"]
    try:
        return str(uuidlib.UUID(raw))
    except ValueError:
        raise errors.BadRequest(f"Malformed consumer_uuid: {raw}") from None


def _write(request: web.Request, consumer_id: str, body: dict[str, Any]) -> ConsumerWrite:
    """A request body (in its microversion's shape) as a write for the allocation rules."""
    if at_least(request, 1, 12):
        allocs = {str(uuidlib.UUID(u)): dict(a["resources"]) for u, a in body["allocations"].items()}
    else:
        allocs = {}
        for item in body["allocations"]:
            rp_uuid = item["resource_provider"]["uuid"]
            if rp_uuid in allocs:
                raise errors.BadRequest(f"Allocation for resource provider {rp_uuid} appears more than once.")
            allocs[rp_uuid] = dict(item["resources"])
    generation = body["consumer_generation"] if at_least(request, 1, 28) else ANY
    return ConsumerWrite(consumer_id, allocs, body.get("project_id"), body.get("user_id"), generation)


class AllocationsAPI:
    def __init__(self, svc: PlacementService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/allocations/{consumer}", self.show),
            Route("PUT", "/allocations/{consumer}", self.put),
            Route("DELETE", "/allocations/{consumer}", self.delete),
            Route("POST", "/allocations", self.post),
            Route("GET", "/usages", self.usages),
        ]

    async def show(self, request: web.Request) -> web.Response:
        c = self.svc.consumer_allocations(ctx(request), _consumer(request))
        return respond(request, views.consumer(c, version(request)))

    async def put(self, request: web.Request) -> web.Response:
        consumer_id = _consumer(request)
        body = await read_json(request, schemas.allocations_put(vtuple(request)))
        await self.svc.replace_allocations(ctx(request), _write(request, consumer_id, body))
        return empty()

    async def post(self, request: web.Request) -> web.Response:
        require(request, 1, 13)
        body = await read_json(request, schemas.allocations_post(vtuple(request)))
        writes = [_write(request, str(uuidlib.UUID(c)), one) for c, one in body.items()]
        await self.svc.manage_allocations(ctx(request), writes)
        return empty()

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.delete_allocations(ctx(request), _consumer(request))
        return empty()

    async def usages(self, request: web.Request) -> web.Response:
        require(request, 1, 9)
        check_query(request, {"project_id", "user_id"})
        project = request.query.get("project_id")
        if not project:
            raise errors.BadRequest("Invalid query string parameters: 'project_id' is a required property")
        used = self.svc.project_usages(ctx(request), project, request.query.get("user_id"))
        return respond(request, {"usages": used})
