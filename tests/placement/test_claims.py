"""The Python API compute uses: providers, claims, moves, releases, and no double booking under races."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func, select

from tinystack.placement.models import Allocation, Inventory
from tinystack.placement.service import PlacementService

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
