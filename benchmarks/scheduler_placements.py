"""The scheduler places 10,000 servers over 1,000 fake hosts through the real placement service on SQLite;
prints placements/s, the raw claim rate of the same database as a baseline, and checks that no host
ended over its allocation ratios (by summing the allocation rows, not the usage counters).

A second phase races two schedulers, each with its own placement object and usage copy (two scheduler
processes sharing one database), on fresh hosts: the claims they lose to each other are counted, and the
ratios checked again.

Usage: python -m benchmarks.scheduler_placements [servers] [hosts]
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select

from tinystack import config
from tinystack.compute.scheduler import Flavor, HostState, InMemoryHostStates, NoValidHost, RequestSpec
from tinystack.compute.scheduler.scheduler import Scheduler
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.placement import providers
from tinystack.placement.models import Allocation, Inventory, ResourceProvider
from tinystack.placement.records import Claim
from tinystack.placement.service import MIGRATIONS, PlacementService

FLAVORS = [Flavor(1, 512, 1), Flavor(1, 2048, 20), Flavor(2, 4096, 40), Flavor(4, 8192, 80)]


class CountingPlacement(PlacementService):
    """Placement as the scheduler sees it, counting the claims it refused (races lost, stale copies)."""

    refused = 0

    def try_claim(self, consumer_id: str, project_id: str, user_id: str,
                  allocations: Mapping[str, Mapping[str, int]]) -> Claim:
        claim = super().try_claim(consumer_id, project_id, user_id, allocations)
        if not claim.ok:
            self.refused += 1
        return claim


def inventory(big: bool) -> dict[str, dict[str, int | float]]:
    # Two host sizes, so the small ones fill up and the ratios are really exercised.
    if big:
        return {"VCPU": {"total": 32, "allocation_ratio": 4.0}, "MEMORY_MB": {"total": 131072, "reserved": 512,
                "allocation_ratio": 1.5}, "DISK_GB": {"total": 2000}}
    return {"VCPU": {"total": 8, "allocation_ratio": 4.0}, "MEMORY_MB": {"total": 16384, "reserved": 512,
            "allocation_ratio": 1.0}, "DISK_GB": {"total": 200}}


def over_capacity(db: Database) -> list[str]:
    with db.session() as s:
        used = {(rp, rc): int(n) for rp, rc, n in s.execute(
            select(Allocation.rp_id, Allocation.resource_class, func.sum(Allocation.used))
            .group_by(Allocation.rp_id, Allocation.resource_class))}
        bad = []
        for inv in s.scalars(select(Inventory)):
            cap = int((inv.total - inv.reserved) * inv.allocation_ratio)
            n = used.get((inv.rp_id, inv.resource_class), 0)
            if n > cap or n != inv.used:
                name = s.scalar(select(ResourceProvider.name).where(ResourceProvider.id == inv.rp_id))
                bad.append(f"{name} {inv.resource_class}: {n} allocated, capacity {cap}, counter {inv.used}")
        return bad


def fleet(placement: PlacementService, hosts: int, prefix: str) -> InMemoryHostStates:
    source = InMemoryHostStates()
    for i in range(hosts):
        name = f"{prefix}-{i:04d}"
        rp = placement.ensure_provider(name, inventory(big=i % 4 == 0), ["COMPUTE_NODE"])
        source.put(HostState(name, rp, availability_zone="az1" if i % 2 else "nova", up=i % 97 != 0))
    return source


def place(sched: Scheduler, servers: int, seed: int, reasons: Counter[str]) -> int:
    rng = random.Random(seed)
    placed = 0
    for _ in range(servers):
        flavor = rng.choice(FLAVORS)
        az = "az1" if rng.random() < 0.2 else None
        try:
            sched.select_destinations(RequestSpec(flavor, "bench", "bench", [str(uuid.uuid4())], availability_zone=az))
            placed += 1
        except NoValidHost as exc:
            reasons[exc.reason] += 1
    return placed


def raw_claim_rate(placement: PlacementService, n: int = 500) -> float:
    """Baseline: claims on one known provider (no choosing at all), then released."""
    rp0 = placement.ensure_provider("baseline", {"VCPU": {"total": 100_000}, "MEMORY_MB": {"total": 10**8},
                                                 "DISK_GB": {"total": 10**6}})
    ids = [str(uuid.uuid4()) for _ in range(n)]
    t0 = time.perf_counter()
    for c in ids:
        assert placement.claim(c, "bench", "bench", {rp0: {"VCPU": 1, "MEMORY_MB": 64, "DISK_GB": 1}})
    rate = n / (time.perf_counter() - t0)
    for c in ids:
        placement.release(c)
    with placement.session() as s:
        providers.delete_provider(s, rp0)
    return rate


def single(tmp: str, cfg: Any, servers: int, hosts: int) -> tuple[float, float, list[str]]:
    db = Database(f"sqlite:///{tmp}/placement.db")
    db.migrate("placement", MIGRATIONS)
    placement = CountingPlacement(cfg, db, PolicyEngine(None))
    started = time.perf_counter()
    source = fleet(placement, hosts, "fake")
    print(f"registered {hosts} hosts in {time.perf_counter() - started:.1f}s")
    raw_rate = raw_claim_rate(placement)

    sched = Scheduler(placement, source)
    reasons: Counter[str] = Counter()
    t0, c0 = time.perf_counter(), time.process_time()
    placed = place(sched, servers, 42, reasons)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    rate = servers / elapsed
    bad = over_capacity(db)
    per_host: dict[str, int] = defaultdict(int)
    with db.session() as s:
        for name, n in s.execute(select(ResourceProvider.name, func.count(func.distinct(Allocation.consumer_id)))
                                 .join(Allocation, Allocation.rp_id == ResourceProvider.id)
                                 .group_by(ResourceProvider.name)):
            per_host[name] = n
    print(f"placed {placed} servers ({servers - placed} NoValidHost) over {len(per_host)} hosts in {elapsed:.1f}s: "
          f"{rate:.0f} placements/s (target >= 500); {servers / cpu:.0f} per CPU-second of this process")
    print(f"baseline raw claim rate: {raw_rate:.0f} claims/s; scheduling costs {raw_rate / rate:.2f}x a raw claim")
    print(f"servers per host: min {min(per_host.values())}, max {max(per_host.values())}; "
          f"claims refused: {placement.refused}")
    for reason, n in reasons.most_common(3):
        print(f"   NoValidHost x{n}: {reason}")
    print("hosts over their ratios:", len(bad))
    for line in bad[:10]:
        print("  ", line)
    db.dispose()
    return rate, raw_rate, bad


def racing(tmp: str, cfg: Any, servers: int, hosts: int) -> list[str]:
    """Two schedulers with their own copies, one thread each, on one database: the claims decide."""
    db = Database(f"sqlite:///{tmp}/racing.db")
    db.migrate("placement", MIGRATIONS)
    source = fleet(PlacementService(cfg, db, PolicyEngine(None)), hosts, "race")
    sides = [CountingPlacement(cfg, db, PolicyEngine(None)) for _ in range(2)]
    placed = [0, 0]
    reasons: Counter[str] = Counter()

    def run(i: int) -> None:
        placed[i] = place(Scheduler(sides[i], source), servers // 2, 100 + i, reasons)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    bad = over_capacity(db)
    print(f"two racing schedulers placed {sum(placed)} of {servers // 2 * 2} over {hosts} hosts in {elapsed:.1f}s "
          f"({sum(placed) / elapsed:.0f}/s together); claims refused (lost races): {sum(s.refused for s in sides)}; "
          f"hosts over their ratios: {len(bad)}")
    for reason, n in reasons.most_common(2):
        print(f"   NoValidHost x{n}: {reason}")
    db.dispose()
    return bad


def main(servers: int = 10_000, hosts: int = 1_000) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.load(None, environ={}, overrides={"state_dir": tmp})
        rate, _raw, bad = single(tmp, cfg, servers, hosts)
        bad += racing(tmp, cfg, servers // 2, hosts)
        return 1 if bad or rate < 500 else 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))
