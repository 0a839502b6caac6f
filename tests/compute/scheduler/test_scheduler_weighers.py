"""Weighers: spread prefers free hosts, stack full ones, soft affinity counts group members."""

from __future__ import annotations

from tinystack.compute.scheduler import Flavor, HostState, RequestSpec, ServerGroup
from tinystack.compute.scheduler.weighers import default_weighers, weigh
from tinystack.placement.records import InventoryRecord, ProviderUsage


def pair(name: str, free_ram: int, free_cpu: int) -> tuple[ProviderUsage, HostState]:
    rp = f"rp-{name}"
    inventories = {"MEMORY_MB": InventoryRecord("MEMORY_MB", 8192, used=8192 - free_ram),
                   "VCPU": InventoryRecord("VCPU", 16, used=16 - free_cpu), "DISK_GB": InventoryRecord("DISK_GB", 100)}
    return ProviderUsage(rp, 1, inventories, frozenset()), HostState(name, rp)


SPEC = RequestSpec(Flavor(1, 512, 1), "p", "u", ["i"])
HOSTS = [pair("empty", 8000, 16), pair("half", 4000, 8), pair("full", 500, 1)]


def best(weights: list[float]) -> str:
    return HOSTS[max(range(len(weights)), key=weights.__getitem__)][1].host


def test_spread_and_stack() -> None:
    assert best(weigh(HOSTS, SPEC, default_weighers("spread"))) == "empty"
    assert best(weigh(HOSTS, SPEC, default_weighers("stack"))) == "full"


def test_multipliers_pick_the_resource() -> None:
    hosts = [pair("ram-rich", 8000, 1), pair("cpu-rich", 500, 16)]
    ram_only = weigh(hosts, SPEC, default_weighers("spread", ram=1.0, cpu=0.0, disk=0.0))
    cpu_only = weigh(hosts, SPEC, default_weighers("spread", ram=0.0, cpu=1.0, disk=0.0))
    assert ram_only[0] > ram_only[1] and cpu_only[1] > cpu_only[0]


def test_soft_affinity_weighers() -> None:
    soft = RequestSpec(Flavor(1, 512, 1), "p", "u", ["i"], server_group=ServerGroup("g", "soft-affinity",
                                                                                      ("full", "full")))
    assert best(weigh(HOSTS, soft, default_weighers("spread", soft_affinity=10.0))) == "full"
    anti = RequestSpec(Flavor(1, 512, 1), "p", "u", ["i"], server_group=ServerGroup("g", "soft-anti-affinity",
                                                                                      ("empty",)))
    assert best(weigh(HOSTS, anti, default_weighers("spread", soft_anti_affinity=10.0))) != "empty"
