"""The resource provider operations of the placement API: providers, their aggregates and traits, and what is
used and allocated on them. Each checks policy, then reads or writes in one transaction (writes on a worker
thread, retried when they lose a race)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.placement import allocations, catalog, providers
from tinystack.placement.base import PlacementBase
from tinystack.placement.commands import Listed, ProviderAllocations, ProviderQuery, ProviderWrite
from tinystack.placement.models import ResourceProvider
from tinystack.placement.records import Provider


class ProviderOps(PlacementBase):
    def list_providers(self, ctx: RequestContext, q: ProviderQuery) -> list[Provider]:
        self.authorize(ctx, "resource_providers:list")
        with self.session() as s:
            if q.required or q.forbidden:
                providers.check_traits(s, [*q.required, *q.forbidden])
            for rc in q.resources or {}:
                if not catalog.resource_class_exists(s, rc):
                    raise errors.BadRequest(f"Invalid resource class in resources parameter: No such resource class {rc}.")
            return providers.listing(s, uuid=q.uuid, name=q.name, in_tree=q.in_tree, member_of=q.member_of,
                                     required=q.required, forbidden=q.forbidden, resources=q.resources)

    async def create_provider(self, ctx: RequestContext, w: ProviderWrite) -> Provider:
        self.authorize(ctx, "resource_providers:create")
        return await self.write(lambda s: providers.create(s, w.name, w.uuid, w.parent_uuid))

    def show_provider(self, ctx: RequestContext, rp_uuid: str) -> Provider:
        self.authorize(ctx, "resource_providers:show")
        with self.session() as s:
            return providers.get(s, rp_uuid)

    async def update_provider(self, ctx: RequestContext, rp_uuid: str, w: ProviderWrite) -> Provider:
        self.authorize(ctx, "resource_providers:update")
        return await self.write(lambda s: providers.update_provider(s, rp_uuid, w.name, w.parent_uuid, w.parent_given))

    async def delete_provider(self, ctx: RequestContext, rp_uuid: str) -> None:
        self.authorize(ctx, "resource_providers:delete")
        await self.write(lambda s: providers.delete_provider(s, rp_uuid))

    def usages_on(self, ctx: RequestContext, rp_uuid: str) -> tuple[int, dict[str, int]]:
        """The provider's generation and what its allocations use of each class it has inventory of."""
        self.authorize(ctx, "resource_providers:usages")
        with self.session() as s:
            return providers.usages(s, rp_uuid)

    def allocations_on(self, ctx: RequestContext, rp_uuid: str) -> ProviderAllocations:
        self.authorize(ctx, "resource_providers:allocations:list")
        with self.session() as s:
            rp = providers.load(s, rp_uuid)
            return ProviderAllocations(rp.generation, allocations.of_provider(s, rp.id))

    # --- aggregates and traits ---------------------------------------------------------------------------

    def aggregates_of(self, ctx: RequestContext, rp_uuid: str) -> Listed:
        self.authorize(ctx, "resource_providers:aggregates:list")
        with self.session() as s:
            rp = providers.load(s, rp_uuid)
            return Listed(rp.generation, providers.aggregates(s, rp))

    async def set_aggregates(self, ctx: RequestContext, rp_uuid: str, aggregates: list[str],
                             generation: int | None) -> Listed:
        """Replace the provider's aggregates; ``generation`` None (before 1.19) is not checked."""
        self.authorize(ctx, "resource_providers:aggregates:update")
        return Listed(*await self.write(lambda s: providers.set_aggregates(s, rp_uuid, aggregates, generation)))

    def traits_of(self, ctx: RequestContext, rp_uuid: str) -> Listed:
        self.authorize(ctx, "resource_providers:traits:list")
        with self.session() as s:
            rp = providers.load(s, rp_uuid)
            return Listed(rp.generation, providers.traits(s, rp))

    async def set_traits(self, ctx: RequestContext, rp_uuid: str, traits: list[str], generation: int) -> Listed:
        self.authorize(ctx, "resource_providers:traits:update")
        return Listed(*await self.write(lambda s: providers.set_traits(s, rp_uuid, traits, generation)))

    async def clear_traits(self, ctx: RequestContext, rp_uuid: str) -> None:
        self.authorize(ctx, "resource_providers:traits:delete")

        def step(s: Session) -> None:
            gen = s.scalar(select(ResourceProvider.generation).where(ResourceProvider.uuid == rp_uuid))
            if gen is None:
                raise providers.not_found(rp_uuid)
            providers.set_traits(s, rp_uuid, [], gen)

        await self.write(step)
