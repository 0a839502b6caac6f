"""Random builders and change sequences: every rebalance leaves a valid ring and keeps the movement rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinystack.object.ring import RingBuilder

pytestmark = pytest.mark.unit

T0 = 1_800_000_000

device = st.tuples(st.integers(1, 3), st.integers(1, 4), st.sampled_from([0.0, 1.0, 50.0, 100.0, 300.0]))
change = st.one_of(
    st.tuples(st.just("add"), device),
    st.tuples(st.just("weight"), st.integers(0, 40), st.sampled_from([0.0, 10.0, 100.0, 250.0])),
    st.tuples(st.just("remove"), st.integers(0, 40)),
    st.tuples(st.just("replicas"), st.sampled_from([1.0, 2.0, 2.5, 3.0, 3.01, 4.0])),
    st.tuples(st.just("overload"), st.sampled_from([0.0, 0.1, 1.0])),
)


def live(b: RingBuilder) -> list[int]:
    return [d.id for d in b.devs if d is not None and d.id not in b.removing]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(devices=st.lists(device, min_size=1, max_size=14), changes=st.lists(change, max_size=6),
       part_power=st.integers(4, 8), replicas=st.sampled_from([1.0, 2.0, 3.0, 3.2]), seed=st.integers(0, 9))
def test_random_changes_keep_the_rules(devices: list[tuple[int, int, float]], changes: list[tuple],
                                       part_power: int, replicas: float, seed: int) -> None:
    b = RingBuilder(part_power, replicas, 1)
    serial = 0

    def add(region: int, zone: int, weight: float) -> None:
        nonlocal serial
        serial += 1
        b.add_dev({"region": region, "zone": zone, "ip": f"10.{region}.{zone}.1", "port": 6200,
                   "device": f"sd{serial}", "weight": weight})

    for dev in devices:
        add(*dev)
    now = T0
    for step in [("start",), *changes]:
        kind = step[0]
        ids = live(b)
        if kind == "add":
            add(*step[1])
        elif kind == "weight" and ids:
            b.set_weight(ids[step[1] % len(ids)], step[2])
        elif kind == "remove" and len(ids) > 1:
            b.remove_dev(ids[step[1] % len(ids)])
        elif kind == "replicas":
            b.set_replicas(step[1])
        elif kind == "overload":
            b.set_overload(step[1])
        weighted = [i for i in live(b) if b.devs[i].weight > 0]  # type: ignore[union-attr]
        if not weighted:
            with pytest.raises(ValueError):
                b.rebalance(seed=seed, now=now)
            return
        leaving = {i for i, d in enumerate(b.devs) if d is not None and (i in b.removing or d.weight == 0)}
        before = None if b.a2d is None else b.a2d.copy()
        locked = (b.last_moved > 0) & (b.last_moved.astype(np.int64) + 3600 > now)
        b.rebalance(seed=seed, now=now)
        b.validate()
        a2d = b.a2d
        assert a2d is not None
        if before is not None:
            rows = min(len(before), len(a2d))
            old, new = before[:rows], a2d[:rows]
            from_leaving = np.isin(old, list(leaving)) if leaving else np.zeros(old.shape, dtype=bool)
            ordinary = (old != new) & ~from_leaving & (old != 0xFFFF) & (new != 0xFFFF)
            # Duplicates on one device (there were fewer devices than replicas) are not copies; they move freely.
            srt = np.sort(old, axis=0)
            ordinary[:, ((srt[1:] == srt[:-1]) & (srt[1:] != 0xFFFF)).any(axis=0)] = False
            assert (ordinary.sum(axis=0) <= 1).all()  # one replica of a partition per rebalance
            assert not ordinary[:, locked].any()  # nothing moved within min_part_hours, unless it had to
        for part in range(b.parts):
            col = [int(d) for d in a2d[:, part] if d != 0xFFFF]
            if len(weighted) >= len(col):
                assert len(set(col)) == len(col)
            else:
                assert len(set(col)) == len(weighted)  # every device holds one before any holds two
        now += 60
