"""``/v3/regions``, ``/v3/services`` and ``/v3/endpoints``: managing the catalog tokens carry. Keystone checks
policy before it reads a body here: the handlers pass the decoded body on, and the service checks its schema."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import views
from tinystack.identity.api.common import base_url
from tinystack.identity.service import IdentityService


class CatalogAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        out = [
            Route("GET", "/v3/regions", self.list_regions),
            Route("POST", "/v3/regions", self.create_region),
            Route("GET", "/v3/regions/{region_id}", self.get_region),
            Route("PUT", "/v3/regions/{region_id}", self.put_region),
            Route("PATCH", "/v3/regions/{region_id}", self.update_region),
            Route("DELETE", "/v3/regions/{region_id}", self.delete_region),
            Route("GET", "/v3/services", self.list_services),
            Route("POST", "/v3/services", self.create_service),
            Route("GET", "/v3/services/{service_id}", self.get_service),
            Route("PATCH", "/v3/services/{service_id}", self.update_service),
            Route("DELETE", "/v3/services/{service_id}", self.delete_service),
            Route("GET", "/v3/endpoints", self.list_endpoints),
            Route("POST", "/v3/endpoints", self.create_endpoint),
            Route("GET", "/v3/endpoints/{endpoint_id}", self.get_endpoint),
            Route("PATCH", "/v3/endpoints/{endpoint_id}", self.update_endpoint),
            Route("DELETE", "/v3/endpoints/{endpoint_id}", self.delete_endpoint),
        ]
        # Keystone answers HEAD wherever it answers GET; aiohttp sends no body for HEAD.
        return out + [Route("HEAD", r.path, r.handler) for r in out if r.method == "GET"]

    # --- regions ---------------------------------------------------------------------------------

    async def list_regions(self, request: web.Request) -> web.Response:
        found = self.svc.catalog.list_regions(ctx(request), request.query.get("parent_region_id"))
        base = base_url(request)
        return json_response(views.collection(base, "regions", "regions", [views.region(base, r) for r in found]))

    async def get_region(self, request: web.Request) -> web.Response:
        region = self.svc.catalog.get_region(ctx(request), request.match_info["region_id"])
        return json_response({"region": views.region(base_url(request), region)})

    async def create_region(self, request: web.Request) -> web.Response:
        region = await self.svc.catalog.create_region(ctx(request), await read_json(request))
        return json_response({"region": views.region(base_url(request), region)}, status=201)

    async def put_region(self, request: web.Request) -> web.Response:
        """Create a region with the id in the path; like Keystone, an existing id is a conflict."""
        region = await self.svc.catalog.create_region(ctx(request), await read_json(request),
                                                      request.match_info["region_id"])
        return json_response({"region": views.region(base_url(request), region)}, status=201)

    async def update_region(self, request: web.Request) -> web.Response:
        region = await self.svc.catalog.update_region(ctx(request), request.match_info["region_id"],
                                                      await read_json(request))
        return json_response({"region": views.region(base_url(request), region)})

    async def delete_region(self, request: web.Request) -> web.Response:
        await self.svc.catalog.delete_region(ctx(request), request.match_info["region_id"])
        return empty()

    # --- services --------------------------------------------------------------------------------

    async def list_services(self, request: web.Request) -> web.Response:
        found = self.svc.catalog.list_services(ctx(request), request.query.get("type"), request.query.get("name"))
        base = base_url(request)
        return json_response(views.collection(base, "services", "services", [views.service(base, s) for s in found]))

    async def get_service(self, request: web.Request) -> web.Response:
        service = self.svc.catalog.get_service(ctx(request), request.match_info["service_id"])
        return json_response({"service": views.service(base_url(request), service)})

    async def create_service(self, request: web.Request) -> web.Response:
        service = await self.svc.catalog.create_service(ctx(request), await read_json(request))
        return json_response({"service": views.service(base_url(request), service)}, status=201)

    async def update_service(self, request: web.Request) -> web.Response:
        service = await self.svc.catalog.update_service(ctx(request), request.match_info["service_id"],
                                                        await read_json(request))
        return json_response({"service": views.service(base_url(request), service)})

    async def delete_service(self, request: web.Request) -> web.Response:
        await self.svc.catalog.delete_service(ctx(request), request.match_info["service_id"])
        return empty()

    # --- endpoints -------------------------------------------------------------------------------

    async def list_endpoints(self, request: web.Request) -> web.Response:
        q = request.query
        found = self.svc.catalog.list_endpoints(ctx(request), q.get("service_id"), q.get("interface"), q.get("region_id"))
        base = base_url(request)
        return json_response(views.collection(base, "endpoints", "endpoints", [views.endpoint(base, e) for e in found]))

    async def get_endpoint(self, request: web.Request) -> web.Response:
        endpoint = self.svc.catalog.get_endpoint(ctx(request), request.match_info["endpoint_id"])
        return json_response({"endpoint": views.endpoint(base_url(request), endpoint)})

    async def create_endpoint(self, request: web.Request) -> web.Response:
        endpoint = await self.svc.catalog.create_endpoint(ctx(request), await read_json(request))
        return json_response({"endpoint": views.endpoint(base_url(request), endpoint)}, status=201)

    async def update_endpoint(self, request: web.Request) -> web.Response:
        endpoint = await self.svc.catalog.update_endpoint(ctx(request), request.match_info["endpoint_id"],
                                                          await read_json(request))
        return json_response({"endpoint": views.endpoint(base_url(request), endpoint)})

    async def delete_endpoint(self, request: web.Request) -> web.Response:
        await self.svc.catalog.delete_endpoint(ctx(request), request.match_info["endpoint_id"])
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return CatalogAPI(svc).routes()
