"""Requests on the catalog tokens carry (regions, services, endpoints): the policy check, the transaction and
the rules of ``catalog_admin.py``, for a caller's context. Writes run off the event loop.

Keystone checks policy before it reads a body here, so the create and update methods take the decoded
request body and check it against its schema themselves, after policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.jsonio import validate
from tinystack.identity import catalog_admin
from tinystack.identity import credential_schemas as schemas
from tinystack.identity.models import Endpoint, Region, Service

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService


class CatalogAdmin:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def _enforce(self, ctx: RequestContext, rule: str) -> None:
        self.svc.enforce(ctx, f"identity:{rule}", {})

    @staticmethod
    def _body(raw: Any, schema: dict[str, Any], key: str) -> dict[str, Any]:
        validate(raw, schema)
        body: dict[str, Any] = raw[key]
        return body

    # --- regions ---------------------------------------------------------------------------------

    def list_regions(self, ctx: RequestContext, parent_region_id: str | None) -> list[Region]:
        self._enforce(ctx, "list_regions")
        with self.svc.session() as s:
            return catalog_admin.list_regions(s, parent_region_id)

    def get_region(self, ctx: RequestContext, region_id: str) -> Region:
        self._enforce(ctx, "get_region")
        with self.svc.session() as s:
            return catalog_admin.get_region(s, region_id)

    async def create_region(self, ctx: RequestContext, raw: Any, region_id: str | None = None) -> Region:
        """A region from ``raw``; with ``region_id`` (PUT) the id comes from the path, and like Keystone an
        existing id is a conflict."""
        self._enforce(ctx, "create_region")
        body = self._body(raw, schemas.REGION_CREATE, "region")
        if region_id is not None:
            if body.get("id", region_id) != region_id:
                raise errors.BadRequest(f'Conflicting region IDs specified: "{region_id}" != "{body["id"]}".')
            body = {**body, "id": region_id}
        return await self.svc.write(lambda s: catalog_admin.create_region(s, body))

    async def update_region(self, ctx: RequestContext, region_id: str, raw: Any) -> Region:
        self._enforce(ctx, "update_region")
        body = self._body(raw, schemas.REGION_UPDATE, "region")
        return await self.svc.write(lambda s: catalog_admin.update_region(s, region_id, body))

    async def delete_region(self, ctx: RequestContext, region_id: str) -> None:
        self._enforce(ctx, "delete_region")
        await self.svc.write(lambda s: catalog_admin.delete_region(s, region_id))

    # --- services --------------------------------------------------------------------------------

    def list_services(self, ctx: RequestContext, kind: str | None, name: str | None) -> list[Service]:
        self._enforce(ctx, "list_services")
        with self.svc.session() as s:
            return catalog_admin.list_services(s, kind, name)

    def get_service(self, ctx: RequestContext, service_id: str) -> Service:
        self._enforce(ctx, "get_service")
        with self.svc.session() as s:
            return catalog_admin.get_service(s, service_id)

    async def create_service(self, ctx: RequestContext, raw: Any) -> Service:
        self._enforce(ctx, "create_service")
        body = self._body(raw, schemas.SERVICE_CREATE, "service")
        return await self.svc.write(lambda s: catalog_admin.create_service(s, body))

    async def update_service(self, ctx: RequestContext, service_id: str, raw: Any) -> Service:
        self._enforce(ctx, "update_service")
        body = self._body(raw, schemas.SERVICE_UPDATE, "service")
        return await self.svc.write(lambda s: catalog_admin.update_service(s, service_id, body))

    async def delete_service(self, ctx: RequestContext, service_id: str) -> None:
        self._enforce(ctx, "delete_service")
        await self.svc.write(lambda s: catalog_admin.delete_service(s, service_id))

    # --- endpoints -------------------------------------------------------------------------------

    def list_endpoints(self, ctx: RequestContext, service_id: str | None, interface: str | None,
                       region_id: str | None) -> list[Endpoint]:
        self._enforce(ctx, "list_endpoints")
        if interface is not None and interface not in catalog_admin.INTERFACES:
            raise errors.BadRequest(f"Invalid interface {interface!r}: expected one of admin, internal, public.")
        with self.svc.session() as s:
            return catalog_admin.list_endpoints(s, service_id, interface, region_id)

    def get_endpoint(self, ctx: RequestContext, endpoint_id: str) -> Endpoint:
        self._enforce(ctx, "get_endpoint")
        with self.svc.session() as s:
            return catalog_admin.get_endpoint(s, endpoint_id)

    async def create_endpoint(self, ctx: RequestContext, raw: Any) -> Endpoint:
        self._enforce(ctx, "create_endpoint")
        body = self._body(raw, schemas.ENDPOINT_CREATE, "endpoint")
        return await self.svc.write(lambda s: catalog_admin.create_endpoint(s, body))

    async def update_endpoint(self, ctx: RequestContext, endpoint_id: str, raw: Any) -> Endpoint:
        self._enforce(ctx, "update_endpoint")
        body = self._body(raw, schemas.ENDPOINT_UPDATE, "endpoint")
        return await self.svc.write(lambda s: catalog_admin.update_endpoint(s, endpoint_id, body))

    async def delete_endpoint(self, ctx: RequestContext, endpoint_id: str) -> None:
        self._enforce(ctx, "delete_endpoint")
        await self.svc.write(lambda s: catalog_admin.delete_endpoint(s, endpoint_id))
