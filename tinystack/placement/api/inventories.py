"""A provider's inventories: all at once or one resource class at a time, each write generation-checked."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, read_json
from tinystack.placement import schemas, views
from tinystack.placement.api.common import at_least, path_uuid, require, respond
from tinystack.placement.commands import InventoryWrite
from tinystack.placement.service import PlacementService


def _check_reserved(request: web.Request, rc: str, fields: dict[str, Any]) -> None:
    # Before 1.26 an inventory could not reserve all of itself.
    if not at_least(request, 1, 26) and fields.get("reserved", 0) >= fields["total"] > 0 and fields.get("reserved"):
        raise errors.BadRequest(f"Unable to update inventory for resource provider: the reserved value of {rc} must "
                                "be less than its total before microversion 1.26.")


def _one(request: web.Request, rc: str, body: dict[str, Any]) -> InventoryWrite:
    """A body about one resource class as the write of that class alone."""
    _check_reserved(request, rc, body)
    fields = {k: v for k, v in body.items() if k in schemas.INVENTORY_FIELDS}
    return InventoryWrite(path_uuid(request), body.get("resource_provider_generation"), {rc: fields})


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
        invs = self.svc.inventories_of(ctx(request), path_uuid(request))
        return respond(request, views.inventories(invs.generation, invs.inventories))

    async def replace(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.INVENTORIES_PUT)
        for rc, fields in body["inventories"].items():
            _check_reserved(request, rc, fields)
        write = InventoryWrite(path_uuid(request), body["resource_provider_generation"], body["inventories"], True)
        invs = await self.svc.replace_inventories(ctx(request), write)
        return respond(request, views.inventories(invs.generation, invs.inventories))

    async def create(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.INVENTORY_POST)
        write = _one(request, body["resource_class"], body)
        gen, rec = await self.svc.add_inventory(ctx(request), write)
        resp = respond(request, views.inventory_of(gen, rec), 201)
        resp.headers["Location"] = f"/resource_providers/{write.rp_uuid}/inventories/{rec.resource_class}"
        return resp

    async def delete_all(self, request: web.Request) -> web.Response:
        require(request, 1, 5)
        await self.svc.clear_inventories(ctx(request), path_uuid(request))
        return empty()

    async def show(self, request: web.Request) -> web.Response:
        gen, rec = self.svc.inventory_of(ctx(request), path_uuid(request), request.match_info["rc"])
        return respond(request, views.inventory_of(gen, rec))

    async def update(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.INVENTORY_PUT)
        gen, rec = await self.svc.update_inventory(ctx(request), _one(request, request.match_info["rc"], body))
        return respond(request, views.inventory_of(gen, rec))

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.delete_inventory(ctx(request), path_uuid(request), request.match_info["rc"])
        return empty()
