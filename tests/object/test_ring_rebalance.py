"""Rebalance rules: seeds, min_part_hours, minimal movement, replicas (fractional too), regions, weights, overload."""

from __future__ import annotations

import numpy as np
import pytest

from tinystack.object.ring import RingBuilder, balance, dispersion, validate

pytestmark = pytest.mark.unit


def rows(b: RingBuilder) -> np.ndarray:
    """The builder's replica2part2dev (rows x partitions)."""
    assert b.a2d is not None
    return b.a2d

T0 = 1_800_000_000


def build(part_power: int = 10, replicas: float = 3, zones: int = 4, per_zone: int = 5, region: int = 1,
          weight: float = 100, hours: int = 1, b: RingBuilder | None = None, first_zone: int = 1) -> RingBuilder:
    b = b or RingBuilder(part_power, replicas, hours)
    for z in range(first_zone, first_zone + zones):
        for k in range(per_zone):
            b.add_dev({"region": region, "zone": z, "ip": f"10.{region}.{z}.1", "port": 6200, "device": f"sd{k}",
                       "weight": weight})
    return b


def zone_of(b: RingBuilder) -> np.ndarray:
    lut = np.full(0x10000, -1)
    for d in b.devs:
        if d is not None:
            lut[d.id] = d.region * 1000 + d.zone
    return lut


def test_seeded_rebalance_gives_the_same_ring_twice() -> None:
    rings = []
    for _ in range(2):
        b = build()
        b.rebalance(seed=42, now=T0)
        build(zones=1, first_zone=5, b=b)
        b.set_weight(0, 50)
        b.rebalance(seed=7, now=T0 + 7200)
        rings.append(rows(b).copy())
    assert (rings[0] == rings[1]).all()
    other = build()
    other.rebalance(seed=43, now=T0)
    first = build()
    first.rebalance(seed=42, now=T0)
    assert (rows(other) != rows(first)).any()


def test_min_part_hours_refuses_to_move_a_partition_twice() -> None:
    b = build(hours=1)
    b.rebalance(seed=1, now=T0)
    b.pretend_min_part_hours_passed()
    build(zones=1, per_zone=5, first_zone=5, b=b)
    before = rows(b).copy()
    moved, _, _ = b.rebalance(seed=2, now=T0 + 10)
    first_moves = (rows(b) != before).any(axis=0)
    assert moved == int(first_moves.sum()) > 0
    # Another zone within the hour: none of the partitions just moved may move again.
    build(zones=1, per_zone=5, first_zone=6, b=b)
    before = rows(b).copy()
    b.rebalance(seed=3, now=T0 + 20)
    second_moves = (rows(b) != before).any(axis=0)
    assert second_moves.any()
    assert not (second_moves & first_moves).any()
    # Once the hour has passed they may.
    before = rows(b).copy()
    b.rebalance(seed=4, now=T0 + 3600 + 30)
    later = (rows(b) != before).any(axis=0)
    assert (later & first_moves).any()
    validate(b)


def test_removed_device_moves_even_within_min_part_hours() -> None:
    b = build(hours=24)
    b.rebalance(seed=1, now=T0)
    held = (rows(b) == 3).any(axis=0)
    before = rows(b).copy()
    b.remove_dev(3)
    moved, _, removed = b.rebalance(seed=2, now=T0 + 60)
    assert [d.id for d in removed] == [3] and b.devs[3] is None
    assert not (rows(b) == 3).any()
    changed = (rows(b) != before).any(axis=0)
    assert (changed == held).all() and moved == int(held.sum())
    assert ((rows(b) != before).sum(axis=0) <= 1).all()
    validate(b)


def test_adding_a_zone_moves_only_what_it_must() -> None:
    b = build(part_power=12, zones=4, per_zone=5)
    b.rebalance(seed=1, now=T0)
    before = rows(b).copy()
    b.pretend_min_part_hours_passed()
    build(zones=1, per_zone=5, first_zone=5, b=b)
    moved, bal, _ = b.rebalance(seed=2, now=T0 + 10)
    after = rows(b)
    changed = after != before
    new_devs = set(range(20, 25))
    # Every slot that moved went to the new zone, and no partition moved more than one replica.
    assert set(np.unique(after[changed]).tolist()) <= new_devs
    assert (changed.sum(axis=0) <= 1).all() and moved == int(changed.any(axis=0).sum())
    # The new zone holds its weight's share (a fifth of the slots) and nothing else moved.
    slots = 3 * b.parts
    assert int(changed.sum()) == int(np.isin(after, list(new_devs)).sum())
    assert abs(int(changed.sum()) - slots / 5) <= 0.01 * slots / 5
    assert bal < 1.0 and dispersion(b).percent == 0.0
    validate(b)


def test_set_replicas_3_01_then_rebalance() -> None:
    b = build(part_power=12, zones=4, per_zone=5)
    b.rebalance(seed=1, now=T0)
    before = rows(b).copy()
    b.set_replicas(3.01)
    moved, bal, _ = b.rebalance(seed=2, now=T0 + 10)
    ring = b.get_ring()
    lengths = [len(r) for r in ring.replica2part2dev]
    assert lengths == [4096, 4096, 4096, int(4096 * 0.01)] and ring.replica_count == 3.01
    assert moved >= lengths[3]
    # The three whole replicas stayed where they were, apart from the balance the new slots make room for.
    assert int((rows(b)[:3] != before).sum()) <= lengths[3] + 20
    for part in range(lengths[3]):
        nodes = ring.get_part_nodes(part)
        assert len(nodes) == 4 and len({n.zone for n in nodes}) == 4
    assert all(len(ring.get_part_nodes(p)) == 3 for p in range(lengths[3], 4096))
    assert bal < 2.0 and dispersion(b).percent == 0.0
    validate(b)
    # And back down: the fractional row goes, nothing else moves.
    b.set_replicas(3)
    kept = rows(b)[:3].copy()
    b.rebalance(seed=3, now=T0 + 20)
    assert rows(b).shape == (3, 4096) and (rows(b) == kept).all()


def test_fractional_replicas_mean_a_share_of_partitions_with_one_more() -> None:
    b = build(zones=5, per_zone=2, replicas=3.2)
    b.rebalance(seed=1)
    ring = b.get_ring()
    counts = [len(ring.get_part_nodes(p)) for p in range(ring.partition_count)]
    assert counts.count(4) == int(1024 * 0.2) and counts.count(3) == 1024 - int(1024 * 0.2)
    validate(b)


def test_regions_get_replicas_before_zones_share_them() -> None:
    b = build(zones=2, per_zone=3, region=1)
    build(zones=2, per_zone=3, region=2, b=b, first_zone=1)
    b.rebalance(seed=5)
    lut = zone_of(b)
    zones = lut[rows(b)]
    regions = zones // 1000
    assert ((regions == 1).sum(axis=0) >= 1).all() and ((regions == 2).sum(axis=0) >= 1).all()
    srt = np.sort(zones, axis=0)
    assert (srt[1:] != srt[:-1]).all()  # three different zones for every partition
    assert dispersion(b).percent == 0.0 and balance(b) < 1.0


def test_weights_decide_the_share() -> None:
    b = RingBuilder(12, 3, 1)
    for z in range(1, 5):
        b.add_dev({"region": 1, "zone": z, "ip": f"10.0.{z}.1", "port": 6200, "device": "a", "weight": 100})
        b.add_dev({"region": 1, "zone": z, "ip": f"10.0.{z}.1", "port": 6200, "device": "b", "weight": 200})
    b.rebalance(seed=1)
    counts = np.bincount(rows(b).ravel(), minlength=8)
    assert abs(counts[1] / counts[0] - 2.0) < 0.01
    assert balance(b) < 0.5


def test_overload_trades_balance_for_dispersion() -> None:
    def three_zones(overload: float) -> RingBuilder:
        b = RingBuilder(10, 3, 1)
        for z, w in ((1, 100), (2, 100), (3, 200)):
            for k in range(2):
                b.add_dev({"region": 1, "zone": z, "ip": f"10.0.{z}.1", "port": 6200, "device": f"d{k}", "weight": w})
        b.set_overload(overload)
        b.rebalance(seed=1)
        validate(b)
        return b

    plain = three_zones(0.0)
    assert balance(plain) < 1.0 and dispersion(plain).percent > 10  # zone 3 holds two replicas of many parts
    loaded = three_zones(0.5)
    assert dispersion(loaded).percent == 0.0  # one replica per zone; zones 1-2 carry 33% more than weight says


def test_zero_weight_device_is_drained_and_set_weight_rebalances() -> None:
    b = build()
    b.rebalance(seed=1, now=T0)
    b.set_weight(0, 0)
    b.rebalance(seed=2, now=T0 + 10)
    assert not (rows(b) == 0).any()
    b.set_weight(0, 100)
    b.pretend_min_part_hours_passed()
    b.rebalance(seed=3, now=T0 + 20)
    assert (rows(b) == 0).sum() > 0
    validate(b)


@pytest.mark.parametrize(("regions", "zones", "per_zone"), [(1, 5, 20), (2, 3, 7), (1, 100, 1)])
def test_first_rebalance_hits_every_device_target(regions: int, zones: int, per_zone: int) -> None:
    b = RingBuilder(12, 3, 1)
    for r in range(1, regions + 1):
        for z in range(1, zones + 1):
            for k in range(per_zone):
                b.add_dev({"region": r, "zone": z, "ip": f"10.{r}.{z}.1", "port": 6200, "device": f"d{k}",
                           "weight": 100 + 50 * (k % 3)})
    b.rebalance(seed=1)
    held = np.bincount(rows(b).ravel(), minlength=len(b.devs))[:len(b.devs)]
    assert (held == b.compute_targets().target_parts).all()  # the rounded weight share, to the partition
    assert dispersion(b).percent == 0.0
