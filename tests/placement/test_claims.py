"""The Python API compute uses: providers, claims, moves, releases, and no double booking under races."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests import databases
from tinystack import config
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.placement.models import Allocation, Inventory
from tinystack.placement.service import MIGRATIONS, PlacementService

INV = {"VCPU": {"total": 4, "allocation_ratio": 2.0}, "MEMORY_MB": {"total": 4096, "reserved": 512},
       "DISK_GB": {"total": 100}}


def test_ensure_provider_is_idempotent_and_applies_changes(placement: PlacementService) -> None:
    rp = placement.ensure_provider("host-a", INV, ["HW_ARCH_X86_64", "CUSTOM_GOLD"])
    assert placement.ensure_provider("host-a", INV, ["HW_ARCH_X86_64"]) == rp
    (cand,) = placement.candidates({"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1})
    assert cand.rp_uuid == rp
    assert cand.summaries[rp]["VCPU"].capacity == 8
    assert cand.summaries[rp]["MEMORY_MB"].capacity == 3584
    placement.ensure_provider("host-a", {**INV, "VCPU": {"total": 8, "allocation_ratio": 1.0}})
    (cand,) = placement.candidates({"VCPU": 1})
    assert cand.summaries[rp]["VCPU"].capacity == 8
    assert placement.candidates({"VCPU": 1}, required_traits=["CUSTOM_GOLD"])
    assert placement.candidates({"VCPU": 1}, forbidden_traits=["CUSTOM_GOLD"]) == []


def test_claim_move_release(placement: PlacementService) -> None:
    a = placement.ensure_provider("host-a", INV)
    b = placement.ensure_provider("host-b", INV)
    vm = str(uuid.uuid4())
    assert placement.claim(vm, "p", "u", {a: {"VCPU": 2, "MEMORY_MB": 1024}})
    assert [c.rp_uuid for c in placement.candidates({"MEMORY_MB": 3000})] == [b]  # a has 2560 MB left
    assert not placement.move(vm, {b: {"VCPU": 9}})  # over b's capacity: nothing changes
    assert placement.allocations_of(vm).allocations == {a: {"VCPU": 2, "MEMORY_MB": 1024}}
    assert placement.move(vm, {b: {"VCPU": 4, "MEMORY_MB": 2048}})
    got = placement.allocations_of(vm)
    assert got.allocations == {b: {"VCPU": 4, "MEMORY_MB": 2048}} and got.project_id == "p"
    placement.release(vm)
    assert placement.allocations_of(vm).generation is None
    placement.release(vm)  # releasing twice is fine


def test_claim_refuses_what_does_not_fit(placement: PlacementService) -> None:
    a = placement.ensure_provider("host-a", INV)
    assert not placement.claim(str(uuid.uuid4()), "p", "u", {a: {"MEMORY_MB": 3585}})
    assert not placement.claim(str(uuid.uuid4()), "p", "u", {a: {"PCPU": 1}})  # no such inventory
    assert placement.claim(str(uuid.uuid4()), "p", "u", {a: {"MEMORY_MB": 3584}})
    assert placement.candidates({"MEMORY_MB": 1}) == []


@pytest.mark.slow
def test_concurrent_claims_never_overbook(placement: PlacementService) -> None:
    rp = placement.ensure_provider("busy", {"VCPU": {"total": 10, "allocation_ratio": 3.0},
                                            "MEMORY_MB": {"total": 100000}})
    won: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(8):
            c = str(uuid.uuid4())
            if placement.claim(c, "p", "u", {rp: {"VCPU": 1, "MEMORY_MB": 10}}):
                with lock:
                    won.append(c)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 30  # 64 attempts on a capacity of 30: exactly 30 win
    with placement.session() as s:
        used = s.scalar(select(func.sum(Allocation.used)).where(Allocation.resource_class == "VCPU"))
        counter = s.scalar(select(Inventory.used).where(Inventory.resource_class == "VCPU"))
    assert used == counter == 30


def test_try_claim_answers_with_the_provider_as_placement_has_it(placement: PlacementService) -> None:
    a = placement.ensure_provider("host-a", INV, ["CUSTOM_GOLD"])
    seen: list[dict[str, int | None]] = []
    placement.watch(lambda changed: seen.append(dict(changed)))
    before = placement.provider_usages([a])[a]
    assert before.traits == frozenset({"CUSTOM_GOLD"}) and before.inventories["VCPU"].capacity == 8
    placement.claim("c0", "p", "u", {a: {"VCPU": 4}})
    won = placement.try_claim("c1", "p", "u", {a: {"VCPU": 2}})
    after = won.providers[a]
    assert won.ok and after is not None and after.generation == before.generation + 2
    assert after.inventories["VCPU"].used == 6 and seen[-1] == {a: after.generation}
    refused = placement.try_claim("c2", "p", "u", {a: {"VCPU": 3}})
    as_found = refused.providers[a]
    assert not refused.ok and as_found is not None and as_found.generation == after.generation
    assert as_found.inventories["VCPU"].used == 6 and len(seen) == 2  # nothing committed, nobody told
    gone = str(uuid.uuid4())
    assert placement.try_claim("c3", "p", "u", {gone: {"VCPU": 1}}).providers == {gone: None}
    placement.release("c1")
    assert seen[-1] == {a: after.generation + 1}
    assert placement.provider_generations()[a] == after.generation + 1


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_claims_never_overbook_on(kind: str, tmp_path: Path) -> None:
    """The guarded counters and generation checks hold on the server databases too, under racing writers."""
    if not databases.available(kind):
        pytest.skip(f"no {kind} server on loopback")
    with databases.scratch_database(kind) as url:
        db = Database(url)
        try:
            db.migrate("placement", MIGRATIONS)
            cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
            services = [PlacementService(cfg, db, PolicyEngine(None)) for _ in range(4)]
            rp = services[0].ensure_provider("busy", {"VCPU": {"total": 5, "allocation_ratio": 2.0}})
            won: list[bool] = []

            def worker(svc: PlacementService) -> None:
                for _ in range(5):
                    won.append(svc.try_claim(str(uuid.uuid4()), "p", "u", {rp: {"VCPU": 1}}).ok)

            threads = [threading.Thread(target=worker, args=(s,)) for s in services]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert won.count(True) == 10
            usage = services[0].provider_usages()[rp]
            assert usage.inventories["VCPU"].used == 10
            with services[0].session() as s:
                assert s.scalar(select(func.sum(Allocation.used))) == 10
        finally:
            db.dispose()
