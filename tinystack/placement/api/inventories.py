"""A provider's inventories: all at once or one resource class at a time, each write generation-checked."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, empty, read_json
from tinystack.placement import providers, schemas, views
from tinystack.placement.api.common import at_least, authorize, path_uuid, require, respond
from tinystack.placement.records import concurrent_update
from tinystack.placement.service import PlacementService


def _check_reserved(request: web.Request, rc: str, fields: dict[str, Any]) -> None:
    # Before 1.26 an inventory could not reserve all of itself.
    if not at_least(request, 1, 26) and fields.get("reserved", 0) >= fields["total"] > 0 and fields.get("reserved"):
        raise errors.BadRequest(f"Unable to update inventory for resource provider: the reserved value of {rc} must "
                                "be less than its total before microversion 1.26.")


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in schemas.INVENTORY_FIELDS}


class InventoriesAPI:
    def __init__(self, svc: PlacementService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        base = "/resource_providers/{uuid}/inventories"
        return [
            Route("GET", base, self.index),
            Route("PUT", base, self.replace),
            Route("POST", base, self.create),
            Route("DELETE", base, self.delete_all),
            Route("GET", base + "/{rc}", self.show),
            Route("PUT", base + "/{rc}", self.update),
            Route("DELETE", base + "/{rc}", self.delete),
        ]

    async def index(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:inventories:list")
        with self.svc.session() as s:
            rp = providers.load(s, path_uuid(request))
            out = views.inventories(rp.generation, providers.inventories(s, rp))
        return respond(request, out)

    async def replace(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:inventories:update")
        body = await read_json(request, schemas.INVENTORIES_PUT)
        for rc, fields in body["inventories"].items():
            _check_reserved(request, rc, fields)
        with self.svc.session() as s:
            gen, recs = providers.set_inventories(s, path_uuid(request), body["resource_provider_generation"],
                                                  body["inventories"])
        return respond(request, views.inventories(gen, recs))

    async def create(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:inventories:create")
        body = await read_json(request, schemas.INVENTORY_POST)
        rc = body["resource_class"]
        _check_reserved(request, rc, body)
        rp_uuid = path_uuid(request)
        with self.svc.session() as s:
            rp = providers.load(s, rp_uuid)
            if rc in providers.inventories(s, rp):
                raise errors.Conflict(f"Inventory for {rc} on resource provider {rp_uuid} already exists.")
            generation = body.get("resource_provider_generation", rp.generation)
            gen, recs = providers.set_inventories(s, rp_uuid, generation, {rc: _fields(body)}, replace=False)
        resp = respond(request, {"resource_provider_generation": gen, **views.inventory(recs[rc])}, 201)
        resp.headers["Location"] = f"/resource_providers/{rp_uuid}/inventories/{rc}"
        return resp

    async def delete_all(self, request: web.Request) -> web.Response:
        require(request, 1, 5)
        authorize(request, self.svc, "resource_providers:inventories:delete")
        with self.svc.session() as s:
            rp = providers.load(s, path_uuid(request))
            providers.set_inventories(s, rp.uuid, rp.generation, {})
        return empty()

    async def show(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:inventories:show")
        rc = request.match_info["rc"]
        with self.svc.session() as s:
            rp = providers.load(s, path_uuid(request))
            rec = providers.inventories(s, rp).get(rc)
            if rec is None:
                raise errors.NotFound(f"No inventory of class {rc} for {rp.uuid}")
            out = {"resource_provider_generation": rp.generation, **views.inventory(rec)}
        return respond(request, out)

    async def update(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:inventories:update")
        body = await read_json(request, schemas.INVENTORY_PUT)
        rc = request.match_info["rc"]
        _check_reserved(request, rc, body)
        with self.svc.session() as s:
            rp = providers.load(s, path_uuid(request))
            if rc not in providers.inventories(s, rp):
                raise errors.BadRequest(f"No inventory record with resource class for resource provider "
                                        f"{rp.uuid}: {rc}")
            gen, recs = providers.set_inventories(s, rp.uuid, body["resource_provider_generation"],
                                                  {rc: _fields(body)}, replace=False)
        return respond(request, {"resource_provider_generation": gen, **views.inventory(recs[rc])})

    async def delete(self, request: web.Request) -> web.Response:
        authorize(request, self.svc, "resource_providers:inventories:delete")
        with self.svc.session() as s:
            rp = providers.load(s, path_uuid(request))
            try:
                providers.delete_inventory(s, rp.uuid, request.match_info["rc"], rp.generation)
            except errors.Conflict as exc:
                if exc.details.get("code") == "placement.concurrent_update":
                    raise concurrent_update("resource provider generation conflict.") from None
                raise
        return empty()
