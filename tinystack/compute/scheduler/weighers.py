"""Host weighers: each scores hosts, scores are normalised to 0..1 across the candidates and summed with
a multiplier. ``[scheduler] weight_strategy = spread`` prefers the emptiest hosts, ``stack`` the fullest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tinystack.compute.scheduler import HostState, RequestSpec
from tinystack.placement.service import ProviderUsage


class Weigher(Protocol):
    name: str
    multiplier: float

    def applies(self, spec: RequestSpec) -> bool: ...

    def raw(self, hosts: Sequence[tuple[ProviderUsage, HostState]], spec: RequestSpec) -> list[float]: ...


@dataclass
class FreeResourceWeigher:
    """Free capacity of one resource class on the host (Nova's RAM, CPU and disk weighers)."""

    name: str
    resource_class: str
    multiplier: float = 1.0

    def applies(self, spec: RequestSpec) -> bool:
        return self.multiplier != 0

    def raw(self, hosts: Sequence[tuple[ProviderUsage, HostState]], spec: RequestSpec) -> list[float]:
        rc = self.resource_class
        out = []
        for usage, _host in hosts:
            inv = usage.inventories.get(rc)
            out.append(float(inv.capacity - inv.used) if inv is not None else 0.0)
        return out


@dataclass
class ServerGroupSoftWeigher:
    """Soft (anti-)affinity: more members already on a host weigh up (affinity) or down (anti-affinity)."""

    name: str
    policy: str
    multiplier: float = 1.0

    def applies(self, spec: RequestSpec) -> bool:
        g = spec.server_group
        return g is not None and g.policy == self.policy and bool(g.hosts)

    def raw(self, hosts: Sequence[tuple[ProviderUsage, HostState]], spec: RequestSpec) -> list[float]:
        assert spec.server_group is not None
        counts = Counter(spec.server_group.hosts)
        sign = 1.0 if self.policy == "soft-affinity" else -1.0
        return [sign * counts[h.host] for _u, h in hosts]


def default_weighers(strategy: str = "spread", ram: float = 1.0, cpu: float = 1.0, disk: float = 1.0,
                     soft_affinity: float = 1.0, soft_anti_affinity: float = 1.0) -> list[Weigher]:
    if strategy not in ("spread", "stack"):
        raise ValueError(f"[scheduler] weight_strategy must be spread or stack, not {strategy!r}")
    sign = 1.0 if strategy == "spread" else -1.0
    return [FreeResourceWeigher("RAMWeigher", "MEMORY_MB", sign * ram),
            FreeResourceWeigher("CPUWeigher", "VCPU", sign * cpu),
            FreeResourceWeigher("DiskWeigher", "DISK_GB", sign * disk),
            ServerGroupSoftWeigher("ServerGroupSoftAffinityWeigher", "soft-affinity", soft_affinity),
            ServerGroupSoftWeigher("ServerGroupSoftAntiAffinityWeigher", "soft-anti-affinity", soft_anti_affinity)]


def weigh(hosts: Sequence[tuple[ProviderUsage, HostState]], spec: RequestSpec, weighers: Sequence[Weigher]) -> list[float]:
    """The combined weight of each host, in the order given: sum of multiplier * normalised score."""
    total = [0.0] * len(hosts)
    for w in weighers:
        if not w.applies(spec):
            continue
        raw = w.raw(hosts, spec)
        lo, hi = min(raw), max(raw)
        if hi == lo:
            continue  # every host scores the same: this weigher cannot order them
        scale = w.multiplier / (hi - lo)
        total = [t + (r - lo) * scale for t, r in zip(total, raw, strict=True)]
    return total
