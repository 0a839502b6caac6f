"""Resource providers, and their aggregates, traits, usages and allocations."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, read_json, version
from tinystack.placement import schemas, views
from tinystack.placement.api import query
from tinystack.placement.api.common import at_least, check_query, path_uuid, require, respond
from tinystack.placement.commands import ProviderQuery, ProviderWrite
from tinystack.placement.service import PlacementService


def _filters(request: web.Request) -> ProviderQuery:
    allowed = {"name", "uuid"}
    for key, minor in (("member_of", 3), ("resources", 4), ("in_tree", 14), ("required", 18)):
        if at_least(request, 1, minor):
            allowed.add(key)
    check_query(request, allowed)
    q = request.query
    required, forbidden = query.traits(request, q["required"]) if "required" in q else ([], [])
    return ProviderQuery(uuid=q.get("uuid"), name=q.get("name"), in_tree=q.get("in_tree"),
                         member_of=query.member_of(request, q.getall("member_of", [])), required=required,
                         forbidden=forbidden, resources=query.resources(q["resources"]) if "resources" in q else None)


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
        found = self.svc.list_providers(ctx(request), _filters(request))
        v = version(request)
        return respond(request, {"resource_providers": [views.provider(rp, v) for rp in found]})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.PROVIDER_CREATE_1_14 if at_least(request, 1, 14) else schemas.PROVIDER_CREATE)
        rp = await self.svc.create_provider(ctx(request), ProviderWrite(body["name"], body.get("uuid"),
                                                                        body.get("parent_provider_uuid")))
        headers = {"Location": f"/resource_providers/{rp.uuid}"}
        if at_least(request, 1, 20):
            resp = respond(request, views.provider(rp, version(request)), 200, rp.updated_at)
            resp.headers.update(headers)
            return resp
        return empty(201, headers)

    async def show(self, request: web.Request) -> web.Response:
        rp = self.svc.show_provider(ctx(request), path_uuid(request))
        return respond(request, views.provider(rp, version(request)), modified=rp.updated_at)

    async def update(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.PROVIDER_UPDATE_1_14 if at_least(request, 1, 14) else schemas.PROVIDER_UPDATE)
        write = ProviderWrite(body["name"], parent_uuid=body.get("parent_provider_uuid"),
                              parent_given="parent_provider_uuid" in body)
        rp = await self.svc.update_provider(ctx(request), path_uuid(request), write)
        return respond(request, views.provider(rp, version(request)), modified=rp.updated_at)

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.delete_provider(ctx(request), path_uuid(request))
        return empty()

    async def usages(self, request: web.Request) -> web.Response:
        return respond(request, views.provider_usages(*self.svc.usages_on(ctx(request), path_uuid(request))))

    async def allocations(self, request: web.Request) -> web.Response:
        return respond(request, views.provider_allocations(self.svc.allocations_on(ctx(request), path_uuid(request))))

    async def aggregates(self, request: web.Request) -> web.Response:
        require(request, 1, 1)
        listed = self.svc.aggregates_of(ctx(request), path_uuid(request))
        return respond(request, views.aggregates(listed, version(request)))

    async def set_aggregates(self, request: web.Request) -> web.Response:
        require(request, 1, 1)
        v19 = at_least(request, 1, 19)
        body = await read_json(request, schemas.AGGREGATES_PUT_1_19 if v19 else schemas.AGGREGATE_LIST)
        aggs, gen = (body["aggregates"], body["resource_provider_generation"]) if v19 else (body, None)
        listed = await self.svc.set_aggregates(ctx(request), path_uuid(request), aggs, gen)
        return respond(request, views.aggregates(listed, version(request)))

    async def traits(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        return respond(request, views.traits(self.svc.traits_of(ctx(request), path_uuid(request))))

    async def set_traits(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        body = await read_json(request, schemas.TRAITS_PUT)
        listed = await self.svc.set_traits(ctx(request), path_uuid(request), body["traits"],
                                           body["resource_provider_generation"])
        return respond(request, views.traits(listed))

    async def delete_traits(self, request: web.Request) -> web.Response:
        require(request, 1, 6)
        await self.svc.clear_traits(ctx(request), path_uuid(request))
        return empty()
