"""The consumer side of the placement API: allocations by consumer, usage by project, and the allocation
candidates a request could be satisfied with now."""

from __future__ import annotations

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.placement import allocations, candidates, catalog, providers
from tinystack.placement.allocations import ConsumerWrite
from tinystack.placement.base import PlacementBase
from tinystack.placement.commands import CandidateQuery, Candidates
from tinystack.placement.records import ConsumerAllocations


class ConsumerOps(PlacementBase):
    def consumer_allocations(self, ctx: RequestContext, consumer_id: str) -> ConsumerAllocations:
        self.authorize(ctx, "allocations:list")
        return self.allocations_of(consumer_id)

    async def replace_allocations(self, ctx: RequestContext, write: ConsumerWrite) -> None:
        """PUT: the consumer's allocations become exactly these (none: removed, if the consumer exists)."""
        self.authorize(ctx, "allocations:update")
        if not write.allocations and write.generation is None:
            raise errors.BadRequest("Unable to delete allocations of a consumer that does not exist.")
        await self.write_allocations_async([write])

    async def manage_allocations(self, ctx: RequestContext, writes: list[ConsumerWrite]) -> None:
        """POST (1.13+): several consumers' allocations in one atomic step (a move swaps them this way)."""
        self.authorize(ctx, "allocations:manage")
        await self.write_allocations_async(writes)

    async def delete_allocations(self, ctx: RequestContext, consumer_id: str) -> None:
        self.authorize(ctx, "allocations:delete")
        if not self.allocations_of(consumer_id).allocations:
            raise errors.NotFound(f"No allocations for consumer '{consumer_id}'")
        await self.write_allocations_async([ConsumerWrite(consumer_id, {})])

    def project_usages(self, ctx: RequestContext, project_id: str, user_id: str | None) -> dict[str, int]:
        """What a project's (or one of its users') consumers use, summed per resource class."""
        self.authorize(ctx, "usages")
        with self.session() as s:
            return allocations.usages_of(s, project_id, user_id).get("all", {})

    def allocation_candidates(self, ctx: RequestContext, q: CandidateQuery) -> Candidates:
        self.authorize(ctx, "allocation_candidates:list")
        with self.session() as s:
            for g in q.groups:
                for rc in g.resources:
                    if not catalog.resource_class_exists(s, rc):
                        raise errors.BadRequest(f"Invalid resource class in resources parameter: No such resource "
                                                f"class {rc}.")
                if g.required or g.forbidden:
                    providers.check_traits(s, [*g.required, *g.forbidden])
        with self.db.engine.connect() as conn:
            found = candidates.find_groups(conn, q.groups, q.isolate, q.limit)
            uuids = sorted({u for c in found for u in c.allocations})
            every = candidates.all_summaries(conn, uuids) if q.all_resources else None
            traits = candidates.traits_of(conn, uuids) if q.with_traits else None
        return Candidates(found, every, traits)
