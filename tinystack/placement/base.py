"""What every part of the placement service object shares: policy under placement's rule names, transactions
that tell watchers what changed once they commit, placement's own retry of lost races, and the allocation
write every claim goes through."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from tinystack.config import Config
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceBase
from tinystack.placement import allocations, policies, providers, settings
from tinystack.placement.allocations import ConsumerWrite, Retry
from tinystack.placement.records import ConsumerAllocations, ProviderUsage, concurrent_update

T = TypeVar("T")
Watcher = Callable[[Mapping[str, "int | None"]], None]
"""Told, after each commit, which providers changed: uuid -> new generation, None when deleted."""


class PlacementBase(ServiceBase):
    def __init__(self, config: Config, db: Database, policy: PolicyEngine) -> None:
        super().__init__(db, policy)
        self.settings = settings.load(config)
        self._watchers: list[Watcher] = []
        policy.register_defaults(policies.DEFAULTS)

    def authorize(self, ctx: RequestContext, rule: str) -> None:
        """Enforce ``placement:<rule>``: placement's rules are about the caller, never a resource's owner."""
        self.enforce(ctx, f"placement:{rule}", {"project_id": ctx.project_id, "user_id": ctx.user_id})

    # --- watchers -----------------------------------------------------------------------------------

    def watch(self, fn: Watcher) -> None:
        """Call ``fn`` after every committed change to providers made through this object (in this process).

        Writers in other processes are not seen: a watcher compares generations now and then as well."""
        self._watchers.append(fn)

    def _notify(self, changed: Mapping[str, int | None] | None) -> None:
        if changed:
            for fn in self._watchers:
                fn(changed)

    # --- transactions -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with self.db.session() as s:
            yield s
        self._notify(s.info.get(providers.CHANGED))

    def retrying(self, fn: Callable[[Session], T], attempts: int | None = None) -> T:
        """Run ``fn`` in a fresh transaction until it does not lose a race (``Retry``, a duplicate key, a lock
        held past the busy timeout), ``[placement] claim_retries`` times at most; then 409."""

        def once() -> T:
            with self.session() as s:
                return fn(s)

        return self._retry(once, attempts)

    def _retry(self, once: Callable[[], T], attempts: int | None = None) -> T:
        for attempt in range(attempts or self.settings.claim_retries):
            try:
                return once()
            except (Retry, IntegrityError):
                pass
            except OperationalError as exc:  # SQLite "database is locked" past busy_timeout: also a lost race
                if "locked" not in str(exc):
                    raise
            # Back off a little, randomly, so that writers that collided do not collide again.
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise concurrent_update("Too many concurrent updates to the same resource providers.")

    # --- allocations ----------------------------------------------------------------------------------

    def write_allocations(self, writes: list[ConsumerWrite]) -> dict[str, ProviderUsage]:
        """Write atomically; the providers touched, as the write left them."""

        def once() -> dict[str, ProviderUsage]:
            # A plain connection: the write is all Core statements, and an ORM session around them would
            # cost a third of a boot's claim.
            with self.db.engine.begin() as conn:
                return allocations.write(conn, writes)

        usage = self._retry(once)
        self._notify({u: p.generation for u, p in usage.items()})
        return usage

    async def write_allocations_async(self, writes: list[ConsumerWrite]) -> dict[str, ProviderUsage]:
        """``write_allocations`` on a worker thread, for a handler on the event loop."""
        return await asyncio.to_thread(self.write_allocations, writes)

    def allocations_of(self, consumer_id: str) -> ConsumerAllocations:
        with self.session() as s:
            return allocations.of_consumer(s, consumer_id)
