"""Traits and resource classes: the standard ones and the custom ones operators add."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, query_bool, read_json
from tinystack.placement import schemas, views
from tinystack.placement.api.common import at_least, check_query, require, respond
from tinystack.placement.service import PlacementService


class NamesAPI:
    def __init__(self, svc: PlacementService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/traits", self.traits),
            Route("GET", "/traits/{name}", self.trait),
            Route("PUT", "/traits/{name}", self.put_trait),
            Route("DELETE", "/traits/{name}", self.delete_trait),
            Route("GET", "/resource_classes", self.classes),
            Route("POST", "/resource_classes", self.create_class),
            Route("GET", "/resource_classes/{name}", self.show_class),
            Route("PUT", "/resource_classes/{name}", self.put_class),
            Route("DELETE", "/resource_classes/{name}", self.delete_class),
        ]

    async def traits(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        check_query(request, {"name", "associated"})
        names = self.svc.list_traits(ctx(request), request.query.get("name"), query_bool(request, "associated"))
        return respond(request, {"traits": names})

    async def trait(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        self.svc.show_trait(ctx(request), request.match_info["name"])
        return empty()

    async def put_trait(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        name = request.match_info["name"]
        created = await self.svc.put_trait(ctx(request), name)
        return empty(201 if created else 204, {"Location": f"/traits/{name}"})

    async def delete_trait(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        await self.svc.delete_trait(ctx(request), request.match_info["name"])
        return empty()

    async def classes(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        names = self.svc.list_classes(ctx(request))
        return respond(request, {"resource_classes": [views.resource_class(n) for n in names]})

    async def create_class(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        body = await read_json(request, schemas.RESOURCE_CLASS)
        name = await self.svc.create_class(ctx(request), body["name"])
        return empty(201, {"Location": f"/resource_classes/{name}"})

    async def show_class(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        return respond(request, views.resource_class(self.svc.show_class(ctx(request), request.match_info["name"])))

    async def put_class(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        name = request.match_info["name"]
        if at_least(request, 1, 7):  # from 1.7 PUT creates the class if needed, and takes no body
            created = await self.svc.ensure_class(ctx(request), name)
            return empty(201 if created else 204, {"Location": f"/resource_classes/{name}"})
        body = await read_json(request, schemas.RESOURCE_CLASS)
        return respond(request, views.resource_class(await self.svc.rename_class(ctx(request), name, body["name"])))

    async def delete_class(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        await self.svc.delete_class(ctx(request), request.match_info["name"])
        return empty()
