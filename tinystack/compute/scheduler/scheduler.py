"""The scheduler: allocation candidates from placement → filters → weighers → claim on the best host,
falling back to the next host when another scheduler won the race for the first."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from tinystack.compute.scheduler import HostState, HostStateSource, NoValidHost, RequestSpec, Selection
from tinystack.compute.scheduler.filters import DEFAULT_FILTERS, HostFilter
from tinystack.compute.scheduler.weighers import FreeResourceWeigher, Weigher, default_weighers, weigh
from tinystack.config import Config
from tinystack.placement.service import Candidate

log = logging.getLogger(__name__)

# The keys ``[scheduler]`` accepts (Nova's names) and their defaults.
DEFAULTS: dict[str, str] = {
    "weight_strategy": "spread",
    "ram_weight_multiplier": "1.0",
    "cpu_weight_multiplier": "1.0",
    "disk_weight_multiplier": "1.0",
    "soft_affinity_weight_multiplier": "1.0",
    "soft_anti_affinity_weight_multiplier": "1.0",
    "max_placement_results": "1000",
}


@dataclass(frozen=True)
class SchedulerSettings:
    weight_strategy: str = "spread"
    ram_weight_multiplier: float = 1.0
    cpu_weight_multiplier: float = 1.0
    disk_weight_multiplier: float = 1.0
    soft_affinity_weight_multiplier: float = 1.0
    soft_anti_affinity_weight_multiplier: float = 1.0
    max_placement_results: int = 1000

    @classmethod
    def load(cls, config: Config) -> SchedulerSettings:
        # [scheduler] may also hold keys other compute parts read; only ours are taken here.
        raw = {**DEFAULTS, **{k: v for k, v in config.values.get("scheduler", {}).items() if k in DEFAULTS}}
        floats = {k: float(raw[k]) for k in DEFAULTS if k.endswith("_multiplier")}
        return cls(weight_strategy=raw["weight_strategy"].strip().lower(),
                   max_placement_results=int(raw["max_placement_results"]), **floats)


class Placement(Protocol):
    """The part of ``PlacementService`` the scheduler uses."""

    def candidates(self, resources: dict[str, int], required_traits: Sequence[str] = (),
                   member_of: Sequence[str] = (), forbidden_traits: Sequence[str] = (),
                   limit: int | None = None, prefer: dict[str, float] | None = None) -> list[Candidate]: ...

    def claim(self, consumer_id: str, project_id: str, user_id: str, allocations: dict[str, dict[str, int]]) -> bool: ...

    def release(self, consumer_id: str) -> None: ...


class Scheduler:
    def __init__(self, placement: Placement, host_state_source: HostStateSource,
                 settings: SchedulerSettings | None = None, filters: Sequence[HostFilter] = DEFAULT_FILTERS,
                 weighers: Sequence[Weigher] | None = None) -> None:
        self.placement = placement
        self.source = host_state_source
        self.settings = s = settings or SchedulerSettings()
        self.filters = list(filters)
        self.weighers = list(weighers) if weighers is not None else default_weighers(
            s.weight_strategy, s.ram_weight_multiplier, s.cpu_weight_multiplier, s.disk_weight_multiplier,
            s.soft_affinity_weight_multiplier, s.soft_anti_affinity_weight_multiplier)

    def select_destinations(self, spec: RequestSpec, num: int = 1) -> list[Selection]:
        """Claim resources for ``num`` servers (``spec.instance_uuids[:num]``) and say where each goes.

        All or nothing: if one of them cannot be placed, the claims already made are released and
        ``NoValidHost`` says why."""
        if num < 1 or len(spec.instance_uuids) < num:
            raise ValueError(f"select_destinations needs {num} instance uuid(s), got {len(spec.instance_uuids)}")
        resources = spec.resources()
        required, forbidden = spec.traits()
        states = {h.rp_uuid: h for h in self.source.hosts()}
        prefer = self._sql_weights(spec, resources)
        limit = self.settings.max_placement_results
        # With only the resource weighers in play, placement ranks the candidates itself and a short,
        # best-first list usually suffices; it is widened when the filters reject all of it.
        steps = [n for n in (32, 512) if n < limit] + [limit] if prefer is not None else [limit]
        for step in steps:
            cands = self.placement.candidates(resources, required, (), forbidden, step, prefer)
            if not cands:
                raise NoValidHost(f"No host has {_describe(resources)} free"
                                  + (f" with traits {', '.join(required)}" if required else "") + ".")
            pairs = [(c, states[c.rp_uuid]) for c in cands if c.rp_uuid in states]
            try:
                return self._place(spec, num, pairs, ranked=prefer is not None)
            except NoValidHost:
                if len(cands) < step or step == steps[-1]:
                    raise
        raise AssertionError("unreachable")

    def _sql_weights(self, spec: RequestSpec, resources: dict[str, int]) -> dict[str, float] | None:
        """Placement-side weights equal to our resource weighers, or None when other weighers apply."""
        if any(w.applies(spec) for w in self.weighers if not isinstance(w, FreeResourceWeigher)):
            return None
        weights = {w.resource_class: w.multiplier for w in self.weighers
                   if isinstance(w, FreeResourceWeigher) and w.applies(spec) and w.resource_class in resources}
        return weights or None

    def _place(self, spec: RequestSpec, num: int, pairs: list[tuple[Candidate, HostState]], ranked: bool
               ) -> list[Selection]:
        chosen: list[Selection] = []
        group = spec.server_group
        try:
            for n, consumer in enumerate(spec.instance_uuids[:num], start=1):
                selection, pairs = self._place_one(spec, consumer, pairs, last=n == num, ranked=ranked and n == 1)
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

    def _place_one(self, spec: RequestSpec, consumer: str, pairs: list[tuple[Candidate, HostState]], last: bool,
                   ranked: bool) -> tuple[Selection, list[tuple[Candidate, HostState]]]:
        hosts = self._filter(spec, pairs)
        if ranked:  # placement already ordered them by the same weights, best first
            order: list[int] = list(range(len(hosts)))
        else:
            weights = weigh(hosts, spec, self.weighers)
            order = sorted(range(len(hosts)), key=weights.__getitem__, reverse=True)
        for i in order:
            cand, host = hosts[i]
            if self.placement.claim(consumer, spec.project_id, spec.user_id, cand.allocations):
                return (Selection(host.host, cand.rp_uuid, host.node or host.host, cand.allocations),
                        pairs if last else _consume(pairs, cand))
            log.debug("lost the race for %s on %s; trying the next host", consumer, host.host)
        raise NoValidHost(f"Every host that fits was claimed by other requests first ({len(hosts)} tried).")

    def _filter(self, spec: RequestSpec, pairs: list[tuple[Candidate, HostState]]) -> list[tuple[Candidate, HostState]]:
        ignore = set(spec.ignore_hosts)
        hosts = [p for p in pairs if p[1].host not in ignore] if ignore else pairs
        if not hosts:
            raise NoValidHost("Every host that fits is in the request's ignore list.")
        for f in self.filters:
            if not f.applies(spec):
                continue
            hosts = [p for p in hosts if f.passes(p[1], spec)]
            if not hosts:
                raise NoValidHost(f"Filter {f.name} returned 0 hosts.")
        return hosts


def _consume(pairs: list[tuple[Candidate, HostState]], used: Candidate) -> list[tuple[Candidate, HostState]]:
    """The candidates with ``used`` taken off its host, for the next server of the same request."""
    out = []
    for cand, host in pairs:
        if cand.rp_uuid != used.rp_uuid:
            out.append((cand, host))
            continue
        summary = dict(cand.summaries[cand.rp_uuid])
        amounts = used.allocations[cand.rp_uuid]
        for rc, n in amounts.items():
            s = summary[rc]
            summary[rc] = s._replace(used=s.used + n)
        if all(summary[rc].free >= n for rc, n in amounts.items()):
            out.append((Candidate(cand.allocations, {cand.rp_uuid: summary}, cand.names, cand.rp_uuid), host))
    return out


def _describe(resources: dict[str, int]) -> str:
    return ", ".join(f"{n} {rc}" for rc, n in sorted(resources.items()))
