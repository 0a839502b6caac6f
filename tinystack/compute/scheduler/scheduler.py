"""The scheduler: the best host that fits, passes the filters and wins its claim in placement.

Hosts are taken from the scheduler's copy of placement's usage (cache.py) in weighed order, so a placement
usually looks at a handful of hosts and makes one query, the claim. Only the claim decides: placement
refuses anything over a provider's ratios, and a refused claim (another scheduler got there first) brings
the provider's real usage back and the walk goes on to the next host."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from tinystack.compute.scheduler import HostState, HostStateSource, NoValidHost, RequestSpec, Selection
from tinystack.compute.scheduler.cache import ProviderCache, fits
from tinystack.compute.scheduler.filters import DEFAULT_FILTERS, HostFilter
from tinystack.compute.scheduler.weighers import FreeResourceWeigher, Weigher, default_weighers, weigh
from tinystack.config import Config
from tinystack.placement.service import Claim, ProviderUsage

log = logging.getLogger(__name__)

# The keys ``[scheduler]`` accepts (Nova's names where Nova has one) and their defaults.
DEFAULTS: dict[str, str] = {
    "weight_strategy": "spread",
    "ram_weight_multiplier": "1.0",
    "cpu_weight_multiplier": "1.0",
    "disk_weight_multiplier": "1.0",
    "soft_affinity_weight_multiplier": "1.0",
    "soft_anti_affinity_weight_multiplier": "1.0",
    # Seconds between two looks at every provider's generation (other processes' claims) and at the host
    # states (services going down); changes made in this process are seen at once.
    "cache_refresh_interval": "1.0",
}


@dataclass(frozen=True)
class SchedulerSettings:
    weight_strategy: str = "spread"
    ram_weight_multiplier: float = 1.0
    cpu_weight_multiplier: float = 1.0
    disk_weight_multiplier: float = 1.0
    soft_affinity_weight_multiplier: float = 1.0
    soft_anti_affinity_weight_multiplier: float = 1.0
    cache_refresh_interval: float = 1.0

    @classmethod
    def load(cls, config: Config) -> SchedulerSettings:
        # [scheduler] may also hold keys other compute parts read; only ours are taken here.
        raw = {**DEFAULTS, **{k: v for k, v in config.values.get("scheduler", {}).items() if k in DEFAULTS}}
        floats = {k: float(raw[k]) for k in DEFAULTS if k.endswith("_multiplier")}
        return cls(weight_strategy=raw["weight_strategy"].strip().lower(),
                   cache_refresh_interval=float(raw["cache_refresh_interval"]), **floats)


class Placement(Protocol):
    """The part of ``PlacementService`` the scheduler uses."""

    def try_claim(self, consumer_id: str, project_id: str, user_id: str,
                  allocations: Mapping[str, Mapping[str, int]]) -> Claim: ...

    def release(self, consumer_id: str) -> None: ...

    def provider_usages(self, uuids: Collection[str] | None = None) -> dict[str, ProviderUsage]: ...

    def provider_generations(self) -> dict[str, int]: ...

    def watch(self, fn: Callable[[Mapping[str, int | None]], None]) -> None: ...


class Scheduler:
    def __init__(self, placement: Placement, host_state_source: HostStateSource,
                 settings: SchedulerSettings | None = None, filters: Sequence[HostFilter] = DEFAULT_FILTERS,
                 weighers: Sequence[Weigher] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.placement = placement
        self.source = host_state_source
        self.settings = s = settings or SchedulerSettings()
        self.filters = list(filters)
        self.weighers = list(weighers) if weighers is not None else default_weighers(
            s.weight_strategy, s.ram_weight_multiplier, s.cpu_weight_multiplier, s.disk_weight_multiplier,
            s.soft_affinity_weight_multiplier, s.soft_anti_affinity_weight_multiplier)
        resource_weights = {w.resource_class: w.multiplier for w in self.weighers if isinstance(w, FreeResourceWeigher)}
        self.cache = ProviderCache(placement, resource_weights, s.cache_refresh_interval, clock)
        self.clock = clock
        self._states: dict[str, HostState] = {}  # by provider uuid
        self._states_seen: tuple[object, float] | None = None  # (source revision, when read)
        # Providers whose host passes the filters that depend on the host state alone, by those filters'
        # keys (e.g. the zone asked for): a walk skips the others with one set lookup.
        self._passing: dict[Hashable, frozenset[str]] = {}
        # One decision at a time per scheduler (its copy is not shared safely); separate schedulers race
        # through placement instead.
        self._lock = threading.Lock()

    def select_destinations(self, spec: RequestSpec, num: int = 1) -> list[Selection]:
        """Claim resources for ``num`` servers (``spec.instance_uuids[:num]``) and say where each goes.

        All or nothing: if one of them cannot be placed, the claims already made are released and
        ``NoValidHost`` says why."""
        if num < 1 or len(spec.instance_uuids) < num:
            raise ValueError(f"select_destinations needs {num} instance uuid(s), got {len(spec.instance_uuids)}")
        with self._lock:
            return self._select(spec, num)

    def _select(self, spec: RequestSpec, num: int) -> list[Selection]:
        refreshed = self._refresh_states()
        self.cache.sync(self._states if refreshed else ())
        chosen: list[Selection] = []
        group = spec.server_group
        try:
            for consumer in spec.instance_uuids[:num]:
                selection = self._place_one(spec, consumer)
                chosen.append(selection)
                if spec.server_group is not None:  # later members of this request see this one
                    spec.server_group = replace(spec.server_group, hosts=(*spec.server_group.hosts, selection.host))
        except NoValidHost:
            for done, consumer in zip(chosen, spec.instance_uuids, strict=False):
                log.info("releasing %s on %s: the request could not be placed whole", consumer, done.host)
                self.placement.release(consumer)
            spec.server_group = group
            raise
        return chosen

    # --- host states --------------------------------------------------------------------------------

    def _refresh_states(self) -> bool:
        """Re-read host states when the source says they changed, or every ``cache_refresh_interval``."""
        revision, now = self.source.revision(), self.clock()
        seen = self._states_seen
        if seen is not None and seen[0] == revision and now - seen[1] < self.settings.cache_refresh_interval:
            return False
        self._states = {h.rp_uuid: h for h in self.source.hosts()}
        self._states_seen = (revision, now)
        self._passing.clear()
        return True

    def _static_pass(self, spec: RequestSpec, filters: Sequence[HostFilter]) -> frozenset[str]:
        """Providers whose hosts pass ``filters`` (each with a key), computed once per key set and host states."""
        sig = tuple((f.name, f.key(spec)) for f in filters)
        found = self._passing.get(sig)
        if found is None:
            if len(self._passing) >= 256:  # many distinct requests: start over rather than grow
                self._passing.clear()
            found = frozenset(u for u, h in self._states.items() if all(f.passes(h, spec) for f in filters))
            self._passing[sig] = found
        return found

    # --- one server ---------------------------------------------------------------------------------

    def _place_one(self, spec: RequestSpec, consumer: str) -> Selection:
        resources = spec.resources()
        required, forbidden = spec.traits()
        filters = [f for f in self.filters if f.applies(spec)]
        static = self._static_pass(spec, [f for f in filters if f.key(spec) is not None])
        dynamic = [f for f in filters if f.key(spec) is None]
        ranked = not any(w.applies(spec) for w in self.weighers if not isinstance(w, FreeResourceWeigher))
        tried: set[str] = set()
        while True:
            walk = Walk(spec, resources, required, forbidden, static, dynamic, tried)
            found = self._first(walk) if ranked else self._weighed(walk)
            if found is None:
                raise self._why_not(spec, resources, required, forbidden, filters, tried)
            usage, host = found
            allocations = {usage.uuid: resources}
            claim = self.placement.try_claim(consumer, spec.project_id, spec.user_id, allocations)
            self.cache.record(claim)
            if claim.ok:
                return Selection(host.host, usage.uuid, host.node or host.host, allocations)
            log.debug("lost the race for %s on %s; trying the next host", consumer, host.host)
            tried.add(usage.uuid)

    def _eligible(self, usage: ProviderUsage, w: Walk) -> HostState | None:
        if usage.uuid not in w.static or usage.uuid in w.tried:
            return None
        host = self._states[usage.uuid]
        if not fits(usage, w.resources, w.required, w.forbidden) or host.host in w.spec.ignore_hosts:
            return None
        return host if all(f.passes(host, w.spec) for f in w.dynamic) else None

    def _first(self, w: Walk) -> tuple[ProviderUsage, HostState] | None:
        """The best eligible host in the copy's order (only free-resource weighers apply)."""
        for usage in self.cache.best_first():
            host = self._eligible(usage, w)
            if host is not None:
                return usage, host
        return None

    def _weighed(self, w: Walk) -> tuple[ProviderUsage, HostState] | None:
        """Every eligible host weighed as Nova does (soft affinity and the like apply): a pass over all of them."""
        pairs = []
        for usage in self.cache.providers():
            host = self._eligible(usage, w)
            if host is not None:
                pairs.append((usage, host))
        if not pairs:
            return None
        weights = weigh(pairs, w.spec, self.weighers)
        return pairs[max(range(len(pairs)), key=lambda i: (weights[i], pairs[i][0].uuid))]

    def _why_not(self, spec: RequestSpec, resources: Mapping[str, int], required: Sequence[str],
                 forbidden: Sequence[str], filters: Sequence[HostFilter], tried: set[str]) -> NoValidHost:
        """The reason nothing was found, as Nova words it: the first step that left no host."""
        hosts = [h for p in self.cache.providers() if (h := self._states.get(p.uuid)) is not None
                 and fits(p, resources, required, forbidden)]
        if not hosts:
            return NoValidHost(f"No host has {_describe(resources)} free"
                               + (f" with traits {', '.join(required)}" if required else "") + ".")
        hosts = [h for h in hosts if h.host not in spec.ignore_hosts]
        if not hosts:
            return NoValidHost("Every host that fits is in the request's ignore list.")
        for f in filters:
            hosts = [h for h in hosts if f.passes(h, spec)]
            if not hosts:
                return NoValidHost(f"Filter {f.name} returned 0 hosts.")
        return NoValidHost(f"Every host that fits was claimed by other requests first ({len(tried)} tried).")


@dataclass(frozen=True)
class Walk:
    """One search for a host: the request, what it asks of a provider, and the hosts already ruled out."""

    spec: RequestSpec
    resources: Mapping[str, int]
    required: Sequence[str]
    forbidden: Sequence[str]
    static: frozenset[str]  # providers whose hosts pass the host-state filters
    dynamic: Sequence[HostFilter]  # filters to ask per host
    tried: set[str]


def _describe(resources: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {rc}" for rc, n in sorted(resources.items()))
