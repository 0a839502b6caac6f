"""Resource providers, and their aggregates, traits, usages and allocations."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from tinystack.core import errors
from tinystack.core.web import Route, empty, read_json, version
from tinystack.placement import allocations, catalog, providers, schemas, views
from tinystack.placement.api import query
from tinystack.placement.api.common import at_least, authorize, check_query, path_uuid, require, respond
from tinystack.placement.models import ResourceProvider
from tinystack.placement.service import PlacementService


class ProvidersAPI:
    def __init__(self, svc: PlacementService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        base = "/resource_providers/{uuid}"
        return [
            Route("GET", "/resource_providers", self.index),
            Route("POST", "/resource_providers", self.create),
            Route("GET", base, self.show),
            Route("PUT", base, self.update),
            Route("DELETE", base, self.delete),
            Route("GET", f"{base}/usages", self.usages),
            Route("GET", f"{base}/allocations", self.allocations),
            Route("GET", f"{base}/aggregates", self.aggregates),
            Route("PUT", f"{base}/aggregates", self.set_aggregates),
            Route("GET", f"{base}/traits", self.traits),
            Route("PUT", f"{base}/traits", self.set_traits),
            Route("DELETE", f"{base}/traits", self.delete_traits),
        ]

    async def index(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:list")
        allowed = {"name", "uuid"}
        for key, minor in (("member_of", 3), ("resources", 4), ("in_tree", 14), ("required", 18)):
            if at_least(request, 1, minor):
                allowed.add(key)
        check_query(request, allowed)
        q = request.query
        uuid = q.get("uuid")
        required: list[str] = []
        forbidden: list[str] = []
        if "required" in q:
            required, forbidden = query.traits(request, q["required"])
        resources = query.resources(q["resources"]) if "resources" in q else None
        with self.svc.session() as s:
            if required or forbidden:
                providers.check_traits(s, required + forbidden)
            for rc in resources or {}:
                if not catalog.resource_class_exists(s, rc):
                    raise errors.BadRequest(f"Invalid resource class in resources parameter: No such resource class {rc}.")
            found = providers.listing(s, uuid=uuid, name=q.get("name"), in_tree=q.get("in_tree"),
                                      member_of=query.member_of(request, q.getall("member_of", [])),
                                      required=required, forbidden=forbidden, resources=resources)
        v = version(request)
        return respond(request, {"resource_providers": [views.provider(rp, v) for rp in found]})

    async def create(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:create")
        body = await read_json(request, schemas.PROVIDER_CREATE_1_14 if at_least(request, 1, 14) else schemas.PROVIDER_CREATE)
        with self.svc.session() as s:
            rp = providers.create(s, body["name"], body.get("uuid"), body.get("parent_provider_uuid"))
        headers = {"Location": f"/resource_providers/{rp.uuid}"}
        if at_least(request, 1, 20):
            resp = respond(request, views.provider(rp, version(request)), 200, rp.updated_at)
            resp.headers.update(headers)
            return resp
        return empty(201, headers)

    async def show(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:show")
        with self.svc.session() as s:
            rp = providers.get(s, path_uuid(request))
        return respond(request, views.provider(rp, version(request)), modified=rp.updated_at)

    async def update(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:update")
        v14 = at_least(request, 1, 14)
        body = await read_json(request, schemas.PROVIDER_UPDATE_1_14 if v14 else schemas.PROVIDER_UPDATE)
        with self.svc.session() as s:
            rp = providers.update_provider(s, path_uuid(request), body["name"], body.get("parent_provider_uuid"),
                                           "parent_provider_uuid" in body)
        return respond(request, views.provider(rp, version(request)), modified=rp.updated_at)

    async def delete(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:delete")
        with self.svc.session() as s:
            providers.delete_provider(s, path_uuid(request))
        return empty()

    async def usages(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:usages")
        with self.svc.session() as s:
            gen, used = providers.usages(s, path_uuid(request))
        return respond(request, {"resource_provider_generation": gen, "usages": used})

    async def allocations(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:allocations:list")
        with self.svc.session() as s:
            rp = providers.load(s, path_uuid(request))
            allocs = allocations.of_provider(s, rp.id)
            gen = rp.generation
        return respond(request, {"resource_provider_generation": gen,
                                 "allocations": {c: {"resources": r} for c, r in allocs.items()}})

    async def aggregates(self, request: web.Request) -> web.Response:
        require(request, 1, 1)
        authorize(request, self.svc, "resource_providers:aggregates:list")
        with self.svc.session() as s:
            rp = providers.load(s, path_uuid(request))
            body: dict[str, object] = {"aggregates": providers.aggregates(s, rp)}
            if at_least(request, 1, 19):
                body["resource_provider_generation"] = rp.generation
        return respond(request, body)

    async def set_aggregates(self, request: web.Request) -> web.Response:
        require(request, 1, 1)
        authorize(request, self.svc, "resource_providers:aggregates:update")
        v19 = at_least(request, 1, 19)
        body = await read_json(request, schemas.AGGREGATES_PUT_1_19 if v19 else schemas.AGGREGATE_LIST)
        aggs, gen = (body["aggregates"], body["resource_provider_generation"]) if v19 else (body, None)
        with self.svc.session() as s:
            new_gen, now = providers.set_aggregates(s, path_uuid(request), aggs, gen)
        out: dict[str, object] = {"aggregates": now}
        if v19:
            out["resource_provider_generation"] = new_gen
        return respond(request, out)

    async def traits(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        authorize(request, self.svc, "resource_providers:traits:list")
        with self.svc.session() as s:
            rp = providers.load(s, path_uuid(request))
            out = {"traits": providers.traits(s, rp), "resource_provider_generation": rp.generation}
        return respond(request, out)

    async def set_traits(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        authorize(request, self.svc, "resource_providers:traits:update")
        body = await read_json(request, schemas.TRAITS_PUT)
        with self.svc.session() as s:
            gen, now = providers.set_traits(s, path_uuid(request), body["traits"], body["resource_provider_generation"])
        return respond(request, {"traits": now, "resource_provider_generation": gen})

    async def delete_traits(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        authorize(request, self.svc, "resource_providers:traits:delete")
        with self.svc.session() as s:
            rp_uuid = path_uuid(request)
            gen = s.scalar(select(ResourceProvider.generation).where(ResourceProvider.uuid == rp_uuid))
            if gen is None:
                raise providers.not_found(rp_uuid)
            providers.set_traits(s, rp_uuid, [], gen)
        return empty()
