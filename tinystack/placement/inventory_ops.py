"""The inventory operations of the placement API: a provider's inventories, all at once or one resource class
at a time, each write checked against the provider's generation."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.placement import providers
from tinystack.placement.base import PlacementBase
from tinystack.placement.commands import Inventories, InventoryWrite
from tinystack.placement.records import InventoryRecord, concurrent_update


class InventoryOps(PlacementBase):
    def inventories_of(self, ctx: RequestContext, rp_uuid: str) -> Inventories:
        self.authorize(ctx, "resource_providers:inventories:list")
        with self.session() as s:
            rp = providers.load(s, rp_uuid)
            return Inventories(rp.generation, providers.inventories(s, rp))

    def inventory_of(self, ctx: RequestContext, rp_uuid: str, rc: str) -> tuple[int, InventoryRecord]:
        self.authorize(ctx, "resource_providers:inventories:show")
        with self.session() as s:
            rp = providers.load(s, rp_uuid)
            rec = providers.inventories(s, rp).get(rc)
            if rec is None:
                raise errors.NotFound(f"No inventory of class {rc} for {rp.uuid}")
            return rp.generation, rec

    async def replace_inventories(self, ctx: RequestContext, w: InventoryWrite) -> Inventories:
        """PUT of all inventories: the classes not named go (409 when in use)."""
        self.authorize(ctx, "resource_providers:inventories:update")
        generation = w.generation

        def step(s: Session) -> Inventories:
            gen = providers.load(s, w.rp_uuid).generation if generation is None else generation
            return Inventories(*providers.set_inventories(s, w.rp_uuid, gen, w.inventories))

        return await self.write(step)

    async def add_inventory(self, ctx: RequestContext, w: InventoryWrite) -> tuple[int, InventoryRecord]:
        """POST of one class the provider has no inventory of yet."""
        self.authorize(ctx, "resource_providers:inventories:create")
        (rc,) = w.inventories

        def step(s: Session) -> tuple[int, InventoryRecord]:
            rp = providers.load(s, w.rp_uuid)
            if rc in providers.inventories(s, rp):
                raise errors.Conflict(f"Inventory for {rc} on resource provider {w.rp_uuid} already exists.")
            gen = rp.generation if w.generation is None else w.generation
            new_gen, recs = providers.set_inventories(s, w.rp_uuid, gen, w.inventories, replace=False)
            return new_gen, recs[rc]

        return await self.write(step)

    async def update_inventory(self, ctx: RequestContext, w: InventoryWrite) -> tuple[int, InventoryRecord]:
        """PUT of one class the provider already has."""
        self.authorize(ctx, "resource_providers:inventories:update")
        (rc,) = w.inventories

        def step(s: Session) -> tuple[int, InventoryRecord]:
            rp = providers.load(s, w.rp_uuid)
            if rc not in providers.inventories(s, rp):
                raise errors.BadRequest(f"No inventory record with resource class for resource provider "
                                        f"{rp.uuid}: {rc}")
            gen = rp.generation if w.generation is None else w.generation
            new_gen, recs = providers.set_inventories(s, rp.uuid, gen, w.inventories, replace=False)
            return new_gen, recs[rc]

        return await self.write(step)

    async def clear_inventories(self, ctx: RequestContext, rp_uuid: str) -> None:
        self.authorize(ctx, "resource_providers:inventories:delete")

        def step(s: Session) -> None:
            rp = providers.load(s, rp_uuid)
            providers.set_inventories(s, rp.uuid, rp.generation, {})

        await self.write(step)

    async def delete_inventory(self, ctx: RequestContext, rp_uuid: str, rc: str) -> None:
        self.authorize(ctx, "resource_providers:inventories:delete")

        def step(s: Session) -> None:
            rp = providers.load(s, rp_uuid)
            try:
                providers.delete_inventory(s, rp.uuid, rc, rp.generation)
            except errors.Conflict as exc:
                if exc.details.get("code") == "placement.concurrent_update":
                    raise concurrent_update("resource provider generation conflict.") from None
                raise

        await self.write(step)
