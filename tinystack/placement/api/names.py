"""Traits and resource classes: the standard ones and the custom ones operators add."""

from __future__ import annotations

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, empty, query_bool, read_json
from tinystack.placement import catalog, schemas
from tinystack.placement.api.common import at_least, authorize, check_query, require, respond
from tinystack.placement.service import PlacementService


def _rc(name: str) -> dict[str, object]:
    return {"name": name, "links": [{"rel": "self", "href": f"/resource_classes/{name}"}]}


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
        authorize(request, self.svc, "traits:list")
        check_query(request, {"name", "associated"})
        with self.svc.session() as s:
            names = catalog.list_traits(s, request.query.get("name"), query_bool(request, "associated"))
        return respond(request, {"traits": names})

    async def trait(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        authorize(request, self.svc, "traits:show")
        name = request.match_info["name"]
        with self.svc.session() as s:
            if not catalog.trait_exists(s, name):
                raise errors.NotFound(f"No such trait(s): {name}.")
        return empty()

    async def put_trait(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        authorize(request, self.svc, "traits:update")
        name = request.match_info["name"]
        with self.svc.session() as s:
            created = catalog.put_trait(s, name)
        return empty(201 if created else 204, {"Location": f"/traits/{name}"})

    async def delete_trait(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        authorize(request, self.svc, "traits:delete")
        with self.svc.session() as s:
            catalog.delete_trait(s, request.match_info["name"])
        return empty()

    async def classes(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        authorize(request, self.svc, "resource_classes:list")
        with self.svc.session() as s:
            names = catalog.list_resource_classes(s)
        return respond(request, {"resource_classes": [_rc(n) for n in names]})

    async def create_class(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        authorize(request, self.svc, "resource_classes:create")
        body = await read_json(request, schemas.RESOURCE_CLASS)
        with self.svc.session() as s:
            catalog.create_resource_class(s, body["name"])
        return empty(201, {"Location": f"/resource_classes/{body['name']}"})

    async def show_class(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        authorize(request, self.svc, "resource_classes:show")
        name = request.match_info["name"]
        with self.svc.session() as s:
            if not catalog.resource_class_exists(s, name):
                raise errors.NotFound(f"No such resource class {name}.")
        return respond(request, _rc(name))

    async def put_class(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        authorize(request, self.svc, "resource_classes:update")
        name = request.match_info["name"]
        if at_least(request, 1, 7):  # from 1.7 PUT creates the class if needed, and takes no body
            with self.svc.session() as s:
                created = catalog.create_resource_class(s, name, exist_ok=True)
            return empty(201 if created else 204, {"Location": f"/resource_classes/{name}"})
        body = await read_json(request, schemas.RESOURCE_CLASS)
        with self.svc.session() as s:
            catalog.rename_resource_class(s, name, body["name"])
        return respond(request, _rc(body["name"]))

    async def delete_class(self, request: web.Request) -> web.Response:
        require(request, 1, 2)
        authorize(request, self.svc, "resource_classes:delete")
        with self.svc.session() as s:
            catalog.delete_resource_class(s, request.match_info["name"])
        return empty()
