"""The scheduler's copy of placement's providers (generation, inventories with usage, traits), kept in one
best-first order by the free-resource weighers, so that choosing a host is a short walk from the top of a
list instead of a query over every provider.

Placement stays the judge: each choice is claimed there atomically, and the claim's answer carries the
provider as placement has it, refused or not. The copy follows our own claims from those answers, other
writers in this process through ``PlacementService.watch``, and writers in other processes by comparing
generations every ``refresh_interval`` seconds (or sooner, when one of them makes our claim fail)."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Protocol

from tinystack.placement.service import Claim, ProviderUsage


class UsageSource(Protocol):
    """The part of ``PlacementService`` the copy reads."""

    def provider_usages(self, uuids: Collection[str] | None = None) -> dict[str, ProviderUsage]: ...

    def provider_generations(self) -> dict[str, int]: ...

    def watch(self, fn: Callable[[Mapping[str, int | None]], None]) -> None: ...


def free(p: ProviderUsage, rc: str) -> int:
    inv = p.inventories.get(rc)
    return inv.capacity - inv.used if inv is not None else 0


def fits(p: ProviderUsage, resources: Mapping[str, int], required: Collection[str] = (),
         forbidden: Collection[str] = ()) -> bool:
    """What placement's candidate query asks of a single provider: room, unit rules and traits."""
    for rc, n in resources.items():
        inv = p.inventories.get(rc)
        if (inv is None or inv.capacity - inv.used < n or n < inv.min_unit or n > inv.max_unit
                or n % inv.step_size):
            return False
    traits = p.traits or frozenset()
    return all(t in traits for t in required) and not any(t in traits for t in forbidden)


class ProviderCache:
    """Providers by uuid, and their order by ``weights`` (resource class -> multiplier, best first).

    A provider scores the sum of multiplier x free amount / the largest capacity of that resource in the
    fleet. Nova divides by the spread between the emptiest and the fullest candidate instead; that spread
    moves with nearly every claim and would re-sort the whole fleet each time, while the largest capacity
    changes only with inventories, so one claim moves one provider in the order."""

    def __init__(self, placement: UsageSource, weights: Mapping[str, float], refresh_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.placement = placement
        self.weights = {rc: m for rc, m in weights.items() if m}
        self.refresh_interval = refresh_interval
        self.clock = clock
        self._providers: dict[str, ProviderUsage] = {}
        self._scale: dict[str, float] = {}
        self._order: list[tuple[float, str]] = []  # (-score, uuid), ascending: best first
        self._key: dict[str, tuple[float, str]] = {}
        self._scanned_at: float | None = None
        self._lock = threading.Lock()  # the watcher may be called from another thread
        self._changed: dict[str, int | None] = {}
        self._stale: set[str] = set()
        placement.watch(self._on_change)

    # --- reading ------------------------------------------------------------------------------------

    def get(self, rp_uuid: str) -> ProviderUsage | None:
        return self._providers.get(rp_uuid)

    def __len__(self) -> int:
        return len(self._providers)

    def providers(self) -> list[ProviderUsage]:
        return list(self._providers.values())

    def best_first(self) -> Iterator[ProviderUsage]:
        """Every provider, best score first; safe to update the copy while iterating (it walks a snapshot)."""
        providers = self._providers
        for _score, uuid in list(self._order):
            p = providers.get(uuid)
            if p is not None:
                yield p

    # --- keeping up with placement ------------------------------------------------------------------

    def sync(self, wanted: Collection[str] = ()) -> None:
        """Bring the copy up to date before a decision: everything the first time, providers changed in this
        process since the last call, every provider whose generation moved once ``refresh_interval`` has
        passed, and any of ``wanted`` (providers the caller needs) not yet known."""
        now = self.clock()
        if self._scanned_at is None:
            self._scanned_at = now
            with self._lock:  # before reading: a change committed meanwhile is then read again next time
                self._changed.clear()
            self._replace_all(self.placement.provider_usages())
            return
        reload: set[str] = set()
        gone: set[str] = set()
        if now - self._scanned_at >= self.refresh_interval:
            self._scanned_at = now
            generations = self.placement.provider_generations()
            reload |= {u for u, g in generations.items()
                       if u not in self._providers or self._providers[u].generation != g}
            gone |= set(self._providers) - set(generations)
        with self._lock:
            changed, self._changed = self._changed, {}
            reload |= self._stale
            self._stale = set()
        for u, generation in changed.items():
            if generation is None:
                gone.add(u)
            elif u not in self._providers or generation > self._providers[u].generation:
                reload.add(u)
        reload |= {u for u in wanted if u not in self._providers}
        updates: dict[str, ProviderUsage | None] = dict.fromkeys(gone - reload)
        if reload:
            found = self.placement.provider_usages(reload)
            updates.update({u: found.get(u) for u in reload})
        if updates:
            self._apply(updates)

    def record(self, claim: Claim) -> None:
        """Take the providers a claim answered with (ours, or refused) as placement has them now."""
        updates: dict[str, ProviderUsage | None] = {}
        for u, usage in claim.providers.items():
            old = self._providers.get(u)
            if usage is None or old is None:
                updates[u] = usage
                if usage is not None:
                    self._stale.add(u)  # first seen in a claim's answer, which has no traits: read it whole
                continue
            # A generation that moved by more than our own write means another writer was there too, perhaps
            # changing traits, which a claim does not read: read the provider whole at the next sync.
            if usage.generation != old.generation + (1 if claim.ok else 0):
                self._stale.add(u)
            updates[u] = ProviderUsage(u, usage.generation, usage.inventories,
                                       usage.traits if usage.traits is not None else old.traits)
        self._apply(updates)

    def _on_change(self, changed: Mapping[str, int | None]) -> None:
        with self._lock:
            self._changed.update(changed)

    # --- the order ------------------------------------------------------------------------------------

    def _replace_all(self, usages: dict[str, ProviderUsage]) -> None:
        self._providers = dict(usages)
        self._rebuild()

    def _apply(self, updates: Mapping[str, ProviderUsage | None]) -> None:
        rescale = False
        for u, usage in updates.items():
            old = self._providers.pop(u, None)
            if old is None and usage is None:
                continue  # asked for a provider placement does not have: nothing to change
            if usage is not None:
                self._providers[u] = usage
            if old is None or usage is None or any(self._capacity(old, rc) != self._capacity(usage, rc)
                                                   for rc in self.weights):
                rescale = True
        if rescale:  # a provider came, went or changed inventory: rare, so re-sort everything
            self._rebuild()
            return
        for u in updates:
            self._move(u)

    @staticmethod
    def _capacity(p: ProviderUsage, rc: str) -> int:
        inv = p.inventories.get(rc)
        return inv.capacity if inv is not None else 0

    def _rebuild(self) -> None:
        self._scale = {rc: float(max((self._capacity(p, rc) for p in self._providers.values()), default=0) or 1)
                       for rc in self.weights}
        self._key = {u: self._score_key(p) for u, p in self._providers.items()}
        self._order = sorted(self._key.values())

    def _score_key(self, p: ProviderUsage) -> tuple[float, str]:
        score = 0.0
        for rc, multiplier in self.weights.items():
            score += multiplier * free(p, rc) / self._scale[rc]
        return (-score, p.uuid)

    def _move(self, u: str) -> None:
        old = self._key.pop(u, None)
        if old is not None:
            i = bisect.bisect_left(self._order, old)
            if i < len(self._order) and self._order[i] == old:
                del self._order[i]
        p = self._providers.get(u)
        if p is not None:
            key = self._score_key(p)
            self._key[u] = key
            bisect.insort(self._order, key)
