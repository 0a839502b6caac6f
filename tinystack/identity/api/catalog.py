"""``/v3/regions``, ``/v3/services`` and ``/v3/endpoints``: managing the catalog tokens carry."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import catalog_admin, views
from tinystack.identity import credential_schemas as schemas
from tinystack.identity.api.common import base_url
from tinystack.identity.service import IdentityService


def _query(request: web.Request, name: str) -> str | None:
    return request.query.get(name)


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

    def _enforce(self, request: web.Request, rule: str) -> None:
        self.svc.enforce(ctx(request), f"identity:{rule}")

    # --- regions ---------------------------------------------------------------------------------

    async def list_regions(self, request: web.Request) -> web.Response:
        self._enforce(request, "list_regions")
        base = base_url(request)
        with self.svc.read() as s:
            items = [views.region(base, r) for r in catalog_admin.list_regions(s, _query(request, "parent_region_id"))]
        return json_response(views.collection(base, "regions", "regions", items))

    async def get_region(self, request: web.Request) -> web.Response:
        self._enforce(request, "get_region")
        with self.svc.read() as s:
            region = catalog_admin.get_region(s, request.match_info["region_id"])
            return json_response({"region": views.region(base_url(request), region)})

    async def create_region(self, request: web.Request) -> web.Response:
        self._enforce(request, "create_region")
        body = (await read_json(request, schemas.REGION_CREATE))["region"]
        return self._create_region(request, body)

    async def put_region(self, request: web.Request) -> web.Response:
        """Create a region with the id in the path; like Keystone, an existing id is a conflict."""
        self._enforce(request, "create_region")
        region_id = request.match_info["region_id"]
        body = (await read_json(request, schemas.REGION_CREATE))["region"]
        if body.get("id", region_id) != region_id:
            raise errors.BadRequest(f'Conflicting region IDs specified: "{region_id}" != "{body["id"]}".')
        return self._create_region(request, {**body, "id": region_id})

    def _create_region(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        with self.svc.write() as s:
            region = catalog_admin.create_region(s, body)
            return json_response({"region": views.region(base_url(request), region)}, status=201)

    async def update_region(self, request: web.Request) -> web.Response:
        self._enforce(request, "update_region")
        body = (await read_json(request, schemas.REGION_UPDATE))["region"]
        with self.svc.write() as s:
            region = catalog_admin.update_region(s, request.match_info["region_id"], body)
            return json_response({"region": views.region(base_url(request), region)})

    async def delete_region(self, request: web.Request) -> web.Response:
        self._enforce(request, "delete_region")
        with self.svc.write() as s:
            catalog_admin.delete_region(s, request.match_info["region_id"])
        return empty()

    # --- services --------------------------------------------------------------------------------

    async def list_services(self, request: web.Request) -> web.Response:
        self._enforce(request, "list_services")
        base = base_url(request)
        with self.svc.read() as s:
            found = catalog_admin.list_services(s, _query(request, "type"), _query(request, "name"))
            items = [views.service(base, svc) for svc in found]
        return json_response(views.collection(base, "services", "services", items))

    async def get_service(self, request: web.Request) -> web.Response:
        self._enforce(request, "get_service")
        with self.svc.read() as s:
            service = catalog_admin.get_service(s, request.match_info["service_id"])
            return json_response({"service": views.service(base_url(request), service)})

    async def create_service(self, request: web.Request) -> web.Response:
        self._enforce(request, "create_service")
        body = (await read_json(request, schemas.SERVICE_CREATE))["service"]
        with self.svc.write() as s:
            service = catalog_admin.create_service(s, body)
            return json_response({"service": views.service(base_url(request), service)}, status=201)

    async def update_service(self, request: web.Request) -> web.Response:
        self._enforce(request, "update_service")
        body = (await read_json(request, schemas.SERVICE_UPDATE))["service"]
        with self.svc.write() as s:
            service = catalog_admin.update_service(s, request.match_info["service_id"], body)
            return json_response({"service": views.service(base_url(request), service)})

    async def delete_service(self, request: web.Request) -> web.Response:
        self._enforce(request, "delete_service")
        with self.svc.write() as s:
            catalog_admin.delete_service(s, request.match_info["service_id"])
        return empty()

    # --- endpoints -------------------------------------------------------------------------------

    async def list_endpoints(self, request: web.Request) -> web.Response:
        self._enforce(request, "list_endpoints")
        interface = _query(request, "interface")
        if interface is not None and interface not in catalog_admin.INTERFACES:
            raise errors.BadRequest(f"Invalid interface {interface!r}: expected one of admin, internal, public.")
        base = base_url(request)
        with self.svc.read() as s:
            found = catalog_admin.list_endpoints(s, _query(request, "service_id"), interface, _query(request, "region_id"))
            items = [views.endpoint(base, e) for e in found]
        return json_response(views.collection(base, "endpoints", "endpoints", items))

    async def get_endpoint(self, request: web.Request) -> web.Response:
        self._enforce(request, "get_endpoint")
        with self.svc.read() as s:
            endpoint = catalog_admin.get_endpoint(s, request.match_info["endpoint_id"])
            return json_response({"endpoint": views.endpoint(base_url(request), endpoint)})

    async def create_endpoint(self, request: web.Request) -> web.Response:
        self._enforce(request, "create_endpoint")
        body = (await read_json(request, schemas.ENDPOINT_CREATE))["endpoint"]
        with self.svc.write() as s:
            endpoint = catalog_admin.create_endpoint(s, body)
            return json_response({"endpoint": views.endpoint(base_url(request), endpoint)}, status=201)

    async def update_endpoint(self, request: web.Request) -> web.Response:
        self._enforce(request, "update_endpoint")
        body = (await read_json(request, schemas.ENDPOINT_UPDATE))["endpoint"]
        with self.svc.write() as s:
            endpoint = catalog_admin.update_endpoint(s, request.match_info["endpoint_id"], body)
            return json_response({"endpoint": views.endpoint(base_url(request), endpoint)})

    async def delete_endpoint(self, request: web.Request) -> web.Response:
        self._enforce(request, "delete_endpoint")
        with self.svc.write() as s:
            catalog_admin.delete_endpoint(s, request.match_info["endpoint_id"])
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return CatalogAPI(svc).routes()
