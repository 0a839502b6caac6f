"""The scheduler's copy of placement usage: it follows its own claims, other writers in this process at once,
other processes by generation, and never lets two schedulers overbook a host."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tinystack import config
from tinystack.compute.scheduler import Flavor, HostState, InMemoryHostStates, NoValidHost, RequestSpec
from tinystack.compute.scheduler.cache import ProviderCache
from tinystack.compute.scheduler.scheduler import Scheduler, SchedulerSettings
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.placement.models import Allocation, Inventory
from tinystack.placement.service import MIGRATIONS, PlacementService

INV = {"VCPU": {"total": 4}, "MEMORY_MB": {"total": 4096}, "DISK_GB": {"total": 40}}


def service(tmp_path: Path, db: Database | None = None) -> PlacementService:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
    if db is None:
        db = Database(f"sqlite:///{tmp_path}/placement.db")
        db.migrate("placement", MIGRATIONS)
    return PlacementService(cfg, db, PolicyEngine(None))


SMALL = Flavor(1, 512, 1)


def spec(flavor: Flavor = SMALL) -> RequestSpec:
    return RequestSpec(flavor, "p", "u", [str(uuid.uuid4())])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_copy_follows_claims_releases_and_inventory_in_this_process(tmp_path: Path) -> None:
    placement = service(tmp_path)
    a = placement.ensure_provider("a", INV, ["CUSTOM_GOLD"])
    cache = ProviderCache(placement, {"MEMORY_MB": 1.0}, refresh_interval=3600)
    cache.sync()
    first = cache.get(a)
    assert first is not None and first.traits == frozenset({"CUSTOM_GOLD"})
    claim = placement.try_claim("c1", "p", "u", {a: {"VCPU": 1, "MEMORY_MB": 1024}})
    assert claim.ok and claim.providers[a] is not None
    cache.record(claim)
    after = cache.get(a)
    assert after is not None and after.inventories["MEMORY_MB"].used == 1024
    assert after.generation == first.generation + 1 and after.traits == first.traits
    # A release and a bigger inventory through placement directly: seen at the next sync, no timer needed.
    placement.release("c1")
    placement.ensure_provider("a", {**INV, "MEMORY_MB": {"total": 8192}})
    cache.sync()
    now = cache.get(a)
    assert now is not None and now.inventories["MEMORY_MB"].used == 0 and now.inventories["MEMORY_MB"].total == 8192
    b = placement.ensure_provider("b", {"VCPU": {"total": 64}, "MEMORY_MB": {"total": 65536}})
    cache.sync()
    assert [p.uuid for p in cache.best_first()] == [b, a]  # most free memory first
    with placement.session() as s:
        from tinystack.placement import providers

        providers.delete_provider(s, b)
    cache.sync()
    assert cache.get(b) is None and len(cache) == 1


def test_other_processes_are_seen_by_generation(tmp_path: Path) -> None:
    ours = service(tmp_path)
    theirs = service(tmp_path, ours.db)  # another process's placement on the same database
    a = ours.ensure_provider("a", INV)
    clock = Clock()
    cache = ProviderCache(ours, {"VCPU": 1.0}, refresh_interval=1.0, clock=clock)
    cache.sync()
    assert theirs.claim("x", "p", "u", {a: {"VCPU": 3}})
    cache.sync()
    cached = cache.get(a)
    assert cached is not None and cached.inventories["VCPU"].used == 0  # not yet: nothing told us
    clock.now = 1.5
    cache.sync()
    cached = cache.get(a)
    assert cached is not None and cached.inventories["VCPU"].used == 3


def test_placement_decides_not_the_copy(tmp_path: Path) -> None:
    ours = service(tmp_path)
    theirs = service(tmp_path, ours.db)
    a = ours.ensure_provider("a", INV)
    sched = Scheduler(ours, InMemoryHostStates([HostState("a", a)]), SchedulerSettings(cache_refresh_interval=3600))
    sched.select_destinations(spec())
    assert theirs.claim("x", "p", "u", {a: {"VCPU": 3}})  # fills the host behind our back
    with pytest.raises(NoValidHost, match="No host has"):
        sched.select_destinations(spec())
    # The other process frees two: the refusal showed the copy was behind another writer, so the next
    # decision reads the host again rather than trusting the copy until the refresh interval.
    assert theirs.claim("x", "p", "u", {a: {"VCPU": 1}})
    assert sched.select_destinations(spec())[0].host == "a"


@pytest.mark.slow
def test_racing_schedulers_never_overbook(tmp_path: Path) -> None:
    first = service(tmp_path)
    hosts = [HostState(f"h{i}", first.ensure_provider(f"h{i}", INV)) for i in range(3)]
    placed: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def scheduler_process() -> None:
        # Each thread is a scheduler process of its own: its own placement object and copy.
        sched = Scheduler(service(tmp_path, first.db), InMemoryHostStates(hosts),
                          SchedulerSettings(cache_refresh_interval=3600))
        for _ in range(10):
            try:
                (sel,) = sched.select_destinations(spec())
                with lock:
                    placed.append(sel.host)
            except NoValidHost as exc:
                with lock:
                    refused.append(exc.reason)

    threads = [threading.Thread(target=scheduler_process) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(placed) == 12 and len(refused) == 18  # 3 hosts x 4 VCPU
    assert sorted(placed.count(h.host) for h in hosts) == [4, 4, 4]
    with first.session() as s:
        used = s.scalar(select(func.sum(Allocation.used)).where(Allocation.resource_class == "VCPU"))
        counters = list(s.scalars(select(Inventory.used).where(Inventory.resource_class == "VCPU")))
    assert used == 12 and counters == [4, 4, 4]
