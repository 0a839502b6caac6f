"""Ring and builder basics: partitions from MD5, primaries and handoffs, files, device parsing (unit tier)."""

from __future__ import annotations

import hashlib
import os
import struct
from array import array
from pathlib import Path

import numpy as np
import pytest

from tinystack.object.ring import (
    Device,
    DeviceSpecError,
    Ring,
    RingBuilder,
    RingBuilderError,
    RingFileError,
    dispersion,
    parse_add_value,
    parse_search_value,
    validate,
)

pytestmark = pytest.mark.unit


def rows(b: RingBuilder) -> np.ndarray:
    """The builder's replica2part2dev (rows x partitions)."""
    assert b.a2d is not None
    return b.a2d


def small_builder(part_power: int = 8, replicas: float = 3, zones: int = 4, per_zone: int = 2) -> RingBuilder:
    b = RingBuilder(part_power, replicas, 1)
    for z in range(1, zones + 1):
        for k in range(per_zone):
            b.add_dev({"region": 1, "zone": z, "ip": f"10.0.0.{z}", "port": 6200, "device": f"sd{k}", "weight": 100})
    return b


def test_part_is_top_bits_of_md5(tmp_path: Path) -> None:
    b = small_builder()
    b.rebalance(seed=1)
    b.write_ring(tmp_path / "object.ring", prefix="pre", suffix="suf")
    ring = Ring.load(tmp_path / "object.ring")
    digest = hashlib.md5(b"pre/AUTH_x/cont/obj/with/slash" + b"suf").digest()
    assert ring.get_part("AUTH_x", "cont", "obj/with/slash") == struct.unpack(">I", digest[:4])[0] >> (32 - 8)
    # The config's prefix/suffix win over the file's.
    other = Ring.load(tmp_path / "object.ring", prefix="", suffix="")
    assert other.get_part("AUTH_x") == struct.unpack(">I", hashlib.md5(b"/AUTH_x").digest()[:4])[0] >> 24


def test_nodes_are_distinct_and_spread(tmp_path: Path) -> None:
    b = small_builder()
    b.rebalance(seed=3)
    validate(b)
    ring = b.get_ring()
    assert ring.partition_count == 256 and ring.replica_count == 3.0
    for part in range(ring.partition_count):
        nodes = ring.get_part_nodes(part)
        assert len(nodes) == 3
        assert len({(n.region, n.zone) for n in nodes}) == 3  # four zones, three replicas: one per zone
        handoffs = list(ring.get_more_nodes(part))
        assert {d.id for d in handoffs}.isdisjoint({n.id for n in nodes})
        assert len(handoffs) == 8 - 3
        # The first handoff is in the one zone the primaries do not use.
        assert (handoffs[0].region, handoffs[0].zone) not in {(n.region, n.zone) for n in nodes}
        assert handoffs == list(ring.get_more_nodes(part))
    part, nodes = ring.get_nodes("a", "c", "o")
    assert nodes == ring.get_part_nodes(part)
    assert dispersion(b).percent == 0.0


def test_builder_and_ring_files_round_trip(tmp_path: Path) -> None:
    b = small_builder(replicas=2.5)
    b.set_overload(0.1)
    b.rebalance(seed=5)
    b.save(tmp_path / "x.builder")
    again = RingBuilder.load(tmp_path / "x.builder")
    assert (rows(again) == rows(b)).all() and again.devs == b.devs and again.overload == 0.1
    assert (again.last_moved == b.last_moved).all()
    b.write_ring(tmp_path / "x.ring")
    ring = Ring.load(tmp_path / "x.ring")
    assert ring.replica_count == 2.5
    assert [len(r) for r in ring.replica2part2dev] == [256, 256, 128]
    assert ring.devs == b.devs
    with pytest.raises(RingFileError):
        Ring.load(tmp_path / "x.builder")  # a builder is not a ring
    (tmp_path / "junk").write_bytes(b"\x80\x04not a ring")  # a pickle header, say
    with pytest.raises(RingFileError):
        RingBuilder.load(tmp_path / "junk")


def test_device_values() -> None:
    assert parse_add_value("r1z2-127.0.0.1:6200/sdb1", "100") == {
        "region": 1, "zone": 2, "ip": "127.0.0.1", "port": 6200, "device": "sdb1", "weight": 100.0, "meta": ""}
    v = parse_add_value("z3-[::1]:6200R[::2]:6300/sdc_fast disk", 5)
    assert (v["region"], v["ip"], v["replication_ip"], v["replication_port"], v["meta"]) == (1, "::1", "::2", 6300,
                                                                                             "fast disk")
    for bad in ("r1-127.0.0.1:6200/sdb1", "r1z1-127.0.0.1/sdb1", "r1z1-127.0.0.1:99999/sdb1"):
        with pytest.raises(DeviceSpecError):
            parse_add_value(bad, 1)
    with pytest.raises(DeviceSpecError):
        parse_add_value("r1z1-127.0.0.1:6200/sdb1", -1)
    assert parse_search_value("d3") == {"id": 3}
    assert parse_search_value("r1z2-10.0.0.1:6200/sdb1") == {"region": 1, "zone": 2, "ip": "10.0.0.1", "port": 6200,
                                                              "device": "sdb1"}
    assert parse_search_value("/sdb1") == {"device": "sdb1"}
    d = Device(id=0, region=1, zone=1, ip="1.2.3.4", port=1, device="x", weight=1)
    assert (d.replication_ip, d.replication_port) == ("1.2.3.4", 1)


def test_builder_refuses_bad_requests() -> None:
    with pytest.raises(RingBuilderError):
        RingBuilder(0, 3, 1)
    with pytest.raises(RingBuilderError):
        RingBuilder(8, 0.5, 1)
    b = small_builder(zones=1, per_zone=1)
    with pytest.raises(RingBuilderError):
        b.add_dev({"region": 1, "zone": 1, "ip": "10.0.0.1", "port": 6200, "device": "sd0", "weight": 1})
    with pytest.raises(RingBuilderError):
        b.set_weight(7, 1)
    with pytest.raises(RingBuilderError):
        b.set_weight(0, -1)
    with pytest.raises(RingBuilderError):
        b.get_ring()
    b.set_weight(0, 0)
    with pytest.raises(RingBuilderError):
        b.rebalance()


def test_fewer_devices_than_replicas_still_places_every_slot() -> None:
    b = small_builder(zones=1, per_zone=2)
    b.rebalance(seed=1)
    validate(b)
    ring = b.get_ring()
    assert all(len(ring.get_part_nodes(p)) == 2 for p in range(ring.partition_count))


def test_ring_file_checks_and_staleness(tmp_path: Path) -> None:
    bad = Ring(2, 1, [None], [array("H", [0, 0, 0, 0])])
    bad.save(tmp_path / "bad.ring")
    with pytest.raises(RingFileError, match="unknown device"):
        Ring.load(tmp_path / "bad.ring")
    b = small_builder()
    b.rebalance(seed=1)
    b.write_ring(tmp_path / "object.ring")
    ring = Ring.load(tmp_path / "object.ring")
    assert not ring.is_stale()
    b.write_ring(tmp_path / "object.ring")
    os.utime(tmp_path / "object.ring", (1, ring.mtime + 5))
    assert ring.is_stale()
    b.validate()
    assert b.get_balance() < 1.0
    assert b.dispersion().percent == 0.0


def test_dispersion_tiers_count_replicas_per_partition() -> None:
    b = small_builder(zones=2, per_zone=3)  # two zones, three replicas: one zone holds two of every partition
    b.rebalance(seed=2)
    report = b.dispersion(with_tiers=True)
    zone_of = {d.id: d.zone for d in b.devs if d is not None}
    for z in (1, 2):
        per_part = [sum(zone_of[int(d)] == z for d in rows(b)[:, p]) for p in range(b.parts)]
        limit, hist = report.tiers[f"r1z{z}"]
        assert limit == 2 and hist == [per_part.count(c) for c in range(4)]
    assert report.tiers["r1"] == (3, [0, 0, 0, b.parts])
    assert report.percent == 0.0
