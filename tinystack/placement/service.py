"""The placement rules as one object: what the HTTP API calls (``provider_ops``, ``inventory_ops``, ``name_ops``,
``consumer_ops``, on the shared ``base``), and the Python API Nova's conductor and scheduler use
(``ensure_provider``, ``claim``/``try_claim``, ``release``, ``move``, ``candidates``, ``provider_usages`` and
``watch`` for a scheduler's copy of provider usage)."""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.placement import candidates, catalog, providers
from tinystack.placement.allocations import ANY, CapacityExceeded, ConsumerWrite, Retry, UnknownProvider
from tinystack.placement.base import Watcher
from tinystack.placement.consumer_ops import ConsumerOps
from tinystack.placement.inventory_ops import InventoryOps
from tinystack.placement.models import Inventory, ProviderTrait, ResourceProvider
from tinystack.placement.name_ops import NameOps
from tinystack.placement.provider_ops import ProviderOps
from tinystack.placement.records import (
    Candidate,
    Claim,
    ConsumerAllocations,
    InventoryRecord,
    ProviderUsage,
)

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


class PlacementService(ProviderOps, InventoryOps, NameOps, ConsumerOps):
    """Placement's rules as one object: the HTTP API's operations (one mixin per concept, each checking policy)
    and, below, the Python API compute uses."""

    # --- the Python API for compute ----------------------------------------------------------------

    def ensure_provider(self, host: str, inventory: Mapping[str, Mapping[str, int | float]],
                        traits: Iterable[str] = ()) -> str:
        """The compute node provider named ``host`` with exactly this inventory and at least these traits.

        Idempotent; creates the provider and any ``CUSTOM_`` trait it needs. Traits an operator added stay."""
        wanted_traits = sorted(set(traits))

        def step(s: Session) -> str:
            rp = s.scalars(select(ResourceProvider).where(ResourceProvider.name == host)).first()
            rp_uuid = rp.uuid if rp is not None else providers.create(s, host).uuid
            rp = providers.load(s, rp_uuid)
            current = providers.inventories(s, rp)
            target = {rc: providers.normalize(rc, f) for rc, f in inventory.items()}
            if {rc: r.fields() for rc, r in current.items()} != {rc: r.fields() for rc, r in target.items()}:
                providers.set_inventories(s, rp_uuid, rp.generation, {rc: r.fields() for rc, r in target.items()})
                rp = providers.load(s, rp_uuid)
            have = providers.traits(s, rp)
            if set(wanted_traits) - set(have):
                for name in wanted_traits:
                    if name.startswith("CUSTOM_"):
                        catalog.put_trait(s, name)
                s.flush()
                providers.set_traits(s, rp_uuid, sorted(set(have) | set(wanted_traits)), rp.generation)
            return rp_uuid

        try:
            return self.retrying(step)
        except errors.Conflict as exc:
            if exc.details.get("code") != "placement.concurrent_update":
                raise
            return self.retrying(step)  # a concurrent inventory update from the same host: read again

    def claim(self, consumer_id: str, project_id: str, user_id: str,
              allocations: Mapping[str, Mapping[str, int]]) -> bool:
        """Allocate for ``consumer_id`` (replacing what it had); False when it does not fit."""
        write = ConsumerWrite(consumer_id, {u: dict(r) for u, r in allocations.items() if r}, project_id, user_id)
        try:
            self.write_allocations([write])
        except CapacityExceeded as exc:
            log.debug("claim for %s refused: %s", consumer_id, exc)
            return False
        return True

    def try_claim(self, consumer_id: str, project_id: str, user_id: str,
                  allocations: Mapping[str, Mapping[str, int]]) -> Claim:
        """``claim``, answering also with the providers involved as the claim left (or found) them."""
        write = ConsumerWrite(consumer_id, {u: dict(r) for u, r in allocations.items() if r}, project_id, user_id)
        try:
            return Claim(True, dict(self.write_allocations([write])))
        except CapacityExceeded as exc:
            log.debug("claim for %s refused: %s", consumer_id, exc)
            return Claim(False, dict(exc.usage))
        except UnknownProvider as exc:
            return Claim(False, {exc.rp_uuid: None})

    def release(self, consumer_id: str) -> None:
        """Remove every allocation of ``consumer_id``; nothing to do when it has none."""
        self.write_allocations([ConsumerWrite(consumer_id, {})])

    def move(self, consumer_id: str, new_allocations: Mapping[str, Mapping[str, int]]) -> bool:
        """Replace the consumer's allocations in one step (resize, migrate); False when the new ones do not fit."""
        current = self.allocations_of(consumer_id)
        if current.generation is None:
            raise errors.NotFound(f"Consumer {consumer_id} has no allocations to move.")
        write = ConsumerWrite(consumer_id, {u: dict(r) for u, r in new_allocations.items() if r},
                              current.project_id, current.user_id)
        try:
            self.write_allocations([write])
        except CapacityExceeded:
            return False
        return True

    def candidates(self, resources: Mapping[str, int], required_traits: Iterable[str] = (),
                   member_of: Sequence[str | Sequence[str]] = (), forbidden_traits: Iterable[str] = (),
                   limit: int | None = None) -> list[Candidate]:
        """Single providers that can take ``resources`` now, with their capacity and usage of each.

        ``member_of``: each item is an aggregate uuid, or a list of them of which the provider must be in one."""
        groups = [(False, [m] if isinstance(m, str) else list(m)) for m in member_of]
        req = candidates.Request({rc: n for rc, n in resources.items() if n}, tuple(required_traits),
                                 tuple(forbidden_traits), groups)
        if not req.resources:
            raise errors.BadRequest("At least one resource is required.")
        with self.db.engine.connect() as conn:
            randomize = self.settings.randomize_allocation_candidates
            found = candidates.find(conn, req, None if randomize else limit)
        if randomize:
            random.shuffle(found)
            found = found[:limit] if limit is not None else found
        return found

    def provider_usages(self, uuids: Collection[str] | None = None) -> dict[str, ProviderUsage]:
        """Providers (all, or these) with their generation, inventories, usage and traits, in three queries."""
        rp = ResourceProvider.__table__
        inv = Inventory.__table__
        pt = ProviderTrait.__table__
        where = [rp.c.uuid.in_(list(uuids))] if uuids is not None else []
        with self.db.engine.connect() as conn:
            heads = {row.id: (row.uuid, row.generation) for row in conn.execute(
                select(rp.c.id, rp.c.uuid, rp.c.generation).where(*where))}
            inventories: dict[int, dict[str, InventoryRecord]] = {rp_id: {} for rp_id in heads}
            for r in conn.execute(select(inv).join(rp, rp.c.id == inv.c.rp_id).where(*where)):
                inventories[r.rp_id][r.resource_class] = InventoryRecord(
                    r.resource_class, r.total, r.reserved, r.min_unit, r.max_unit, r.step_size, r.allocation_ratio,
                    r.used)
            traits: dict[int, set[str]] = {rp_id: set() for rp_id in heads}
            for rp_id, trait in conn.execute(select(pt.c.rp_id, pt.c.trait).join(rp, rp.c.id == pt.c.rp_id)
                                             .where(*where)):
                traits[rp_id].add(trait)
        # Where the three reads are not one snapshot (PostgreSQL's read committed), a write between them leaves
        # the generation older than the usage: the reader's next generation check then reads it again.
        return {u: ProviderUsage(u, gen, inventories[rp_id], frozenset(traits[rp_id]))
                for rp_id, (u, gen) in heads.items()}

    def provider_generations(self) -> dict[str, int]:
        """Every provider's generation by uuid, in one query: how a scheduler notices other processes' writes."""
        with self.db.engine.connect() as conn:
            return {u: g for u, g in conn.execute(select(ResourceProvider.uuid, ResourceProvider.generation))}

    def set_provider_aggregate(self, name: str, aggregate: str, member: bool) -> bool:
        """Put the provider named ``name`` in ``aggregate`` (or take it out); False when there is no such provider.

        How compute mirrors its host aggregates, as Nova's report client does."""

        def step(s: Session) -> bool:
            rp = s.scalars(select(ResourceProvider).where(ResourceProvider.name == name)).first()
            if rp is None:
                return False
            have = set(providers.aggregates(s, rp))
            want = have | {aggregate} if member else have - {aggregate}
            if want != have:
                try:
                    providers.set_aggregates(s, rp.uuid, sorted(want), rp.generation)
                except errors.Conflict as exc:  # another writer bumped the provider since we read it
                    if exc.details.get("code") != "placement.concurrent_update":
                        raise
                    raise Retry() from None
            return True

        return self.retrying(step)

    def provider_uuids(self) -> dict[str, str]:
        """Every provider's uuid by name (a compute node's provider is named after its host), in one query."""
        with self.session() as s:
            return {name: u for name, u in s.execute(select(ResourceProvider.name, ResourceProvider.uuid))}

    def provider_uuid(self, host: str) -> str | None:
        with self.session() as s:
            return s.scalar(select(ResourceProvider.uuid).where(ResourceProvider.name == host))


__all__ = ["ANY", "MIGRATIONS", "Candidate", "Claim", "ConsumerAllocations", "ConsumerWrite", "InventoryRecord",
           "PlacementService", "ProviderUsage", "Watcher"]
