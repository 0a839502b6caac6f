"""The scheduler end to end over the real placement service: candidates, filters, weighers and claims."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tinystack import config
from tinystack.compute.scheduler import (
    Flavor,
    HostState,
    InMemoryHostStates,
    NoValidHost,
    RequestSpec,
    ServerGroup,
)
from tinystack.compute.scheduler.scheduler import Scheduler, SchedulerSettings
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.placement.service import MIGRATIONS, PlacementService

SMALL = {"VCPU": {"total": 4}, "MEMORY_MB": {"total": 4096}, "DISK_GB": {"total": 40}}
BIG = {"VCPU": {"total": 16}, "MEMORY_MB": {"total": 32768}, "DISK_GB": {"total": 400}}


@pytest.fixture
def placement(tmp_path: Path) -> PlacementService:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
    db = Database(f"sqlite:///{tmp_path}/placement.db")
    db.migrate("placement", MIGRATIONS)
    return PlacementService(cfg, db, PolicyEngine(None))


@pytest.fixture
def hosts(placement: PlacementService) -> InMemoryHostStates:
    src = InMemoryHostStates()
    for name, inv, az in (("small", SMALL, "nova"), ("big", BIG, "nova"), ("other", SMALL, "az2")):
        src.put(HostState(name, placement.ensure_provider(name, inv), availability_zone=az))
    return src


TINY = Flavor(1, 1024, 10)


def request(n: int = 1, flavor: Flavor = TINY, **kw: Any) -> RequestSpec:
    return RequestSpec(flavor, "proj", "user", [str(uuid.uuid4()) for _ in range(n)], **kw)


def test_spread_picks_the_emptiest_and_claims(placement: PlacementService, hosts: InMemoryHostStates) -> None:
    spec = request()
    (sel,) = Scheduler(placement, hosts).select_destinations(spec)
    assert sel.host == "big"
    assert placement.allocations_of(spec.instance_uuids[0]).allocations == {
        sel.rp_uuid: {"VCPU": 1, "MEMORY_MB": 1024, "DISK_GB": 10}}


def test_stack_picks_the_fullest(placement: PlacementService, hosts: InMemoryHostStates) -> None:
    sched = Scheduler(placement, hosts, SchedulerSettings(weight_strategy="stack"))
    assert sched.select_destinations(request())[0].host in ("small", "other")


def test_filters_apply(placement: PlacementService, hosts: InMemoryHostStates) -> None:
    sched = Scheduler(placement, hosts)
    assert sched.select_destinations(request(availability_zone="az2"))[0].host == "other"
    assert sched.select_destinations(request(force_host="small"))[0].host == "small"
    assert sched.select_destinations(request(ignore_hosts={"big"}))[0].host in ("small", "other")
    hosts.put(HostState("big", placement.provider_uuid("big") or "", enabled=False))
    assert sched.select_destinations(request())[0].host != "big"


def test_no_valid_host_when_nothing_fits(placement: PlacementService, hosts: InMemoryHostStates) -> None:
    sched = Scheduler(placement, hosts)
    with pytest.raises(NoValidHost, match="No host has"):
        sched.select_destinations(request(flavor=Flavor(64, 1024, 1)))
    with pytest.raises(NoValidHost, match="AvailabilityZoneFilter"):
        sched.select_destinations(request(availability_zone="nowhere"))


def test_anti_affinity_spreads_a_multi_create(placement: PlacementService, hosts: InMemoryHostStates) -> None:
    sched = Scheduler(placement, hosts)
    spec = request(3, server_group=ServerGroup("g", "anti-affinity"))
    chosen = sched.select_destinations(spec, num=3)
    assert sorted(s.host for s in chosen) == ["big", "other", "small"]
    # A fourth member has nowhere to go; the request is all or nothing, so it claims nothing.
    spec4 = request(2, server_group=ServerGroup("g", "anti-affinity", tuple(s.host for s in chosen[:2])))
    with pytest.raises(NoValidHost):
        sched.select_destinations(spec4, num=2)
    assert all(placement.allocations_of(c).generation is None for c in spec4.instance_uuids)


def test_affinity_keeps_members_together(placement: PlacementService, hosts: InMemoryHostStates) -> None:
    spec = request(3, server_group=ServerGroup("g", "affinity"))
    chosen = Scheduler(placement, hosts).select_destinations(spec, num=3)
    assert len({s.host for s in chosen}) == 1


def test_a_lost_race_moves_on_to_the_next_host(tmp_path: Path, placement: PlacementService,
                                               hosts: InMemoryHostStates) -> None:
    # The other writer is another process's placement (its own object on the same database), so nothing
    # tells our scheduler's copy; only the refused claim does.
    sched = Scheduler(placement, hosts, SchedulerSettings(cache_refresh_interval=3600))
    assert sched.select_destinations(request())[0].host == "big"
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
    other = PlacementService(cfg, placement.db, PolicyEngine(None))
    big = placement.provider_uuid("big") or ""
    assert other.claim(str(uuid.uuid4()), "x", "y", {big: {"VCPU": 15}})
    (sel,) = sched.select_destinations(request())
    assert sel.host in ("small", "other")
    cached = sched.cache.get(big)
    assert cached is not None and cached.inventories["VCPU"].used == 16  # learnt from the refusal
