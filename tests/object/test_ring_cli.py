"""`tinystack ring`: the Admin Guide's swift-ring-builder walkthrough typed as written (names changed)."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

import pytest

from tinystack.cli import main as tinystack_main
from tinystack.object.ring import Ring, RingBuilder

pytestmark = pytest.mark.unit


def ring(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = tinystack_main(["ring", *args])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def test_walkthrough_and_search_by_md5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    builders = {}
    for kind, port in (("object", 6010), ("container", 6011), ("account", 6012)):
        b = str(tmp_path / f"{kind}.builder")
        builders[kind] = b
        assert ring(capsys, b, "create", "10", "3", "1")[0] == 0
        for z in range(1, 5):
            rc, out = ring(capsys, b, "add", f"z{z}-127.0.0.1:{port + 10 * (z - 1)}/sdb{z}", "1")
            assert rc == 0 and f"got id {z - 1}" in out
        rc, out = ring(capsys, b)
        assert rc == 0 and "1024 partitions, 3.000000 replicas, 1 regions, 4 zones, 4 devices" in out
    for b in builders.values():
        rc, out = ring(capsys, b, "rebalance")
        assert rc == 0 and re.search(r"Reassigned 1024 \(100.00%\) partitions. Balance is now 0.00", out)
    obj = builders["object"]
    assert ring(capsys, obj, "validate") == (0, "Ring is valid.\n")
    rc, out = ring(capsys, obj, "write_ring", "--hash-path-prefix", "pfx", "--hash-path-suffix", "sfx")
    assert rc == 0 and (tmp_path / "object.ring").exists()

    # The partition `search --path` prints is the top 10 bits of md5(prefix + path + suffix).
    rc, out = ring(capsys, str(tmp_path / "object.ring"), "search", "--path", "/AUTH_demo/photos/cat.jpg")
    assert rc == 0
    digest = hashlib.md5(b"pfx/AUTH_demo/photos/cat.jpg" + b"sfx").digest()
    expected = struct.unpack(">I", digest[:4])[0] >> (32 - 10)
    assert f"Partition {expected}\n" in out
    loaded = Ring.load(tmp_path / "object.ring")
    primaries = [line.split()[1] for line in out.splitlines() if line.startswith("Primary")]
    assert primaries == [d.describe() for d in loaded.get_part_nodes(expected)]
    # The same through the builder, given the hash prefix/suffix.
    rc, out2 = ring(capsys, obj, "search", "--path", "/AUTH_demo/photos/cat.jpg",
                    "--hash-path-prefix", "pfx", "--hash-path-suffix", "sfx")
    assert rc == 0 and f"Partition {expected}\n" in out2

    # Device search values.
    rc, out = ring(capsys, obj, "search", "z2")
    assert rc == 0 and "127.0.0.1:6020" in out and "6030" not in out
    assert ring(capsys, obj, "search", "z9")[0] == 2

    # set_replicas 3.01 then rebalance, as the guide shows.
    rc, out = ring(capsys, obj, "set_replicas", "3.01")
    assert rc == 0 and "3.010000" in out
    rc, out = ring(capsys, obj, "rebalance")
    assert rc in (0, 1) and "Reassigned 10 " in out
    assert RingBuilder.load(obj).row_lengths() == [1024, 1024, 1024, 10]
    rc, out = ring(capsys, obj, "dispersion", "-v")
    assert rc == 0 and "Dispersion is 0.00" in out and re.search(r"r1z1\s+1\s", out)


def test_change_verbs_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = str(tmp_path / "object.builder")
    assert ring(capsys, b, "rebalance")[0] == 2  # no builder yet
    assert ring(capsys, b, "create", "8", "2", "0")[0] == 0
    assert ring(capsys, b, "add", "r1z1-10.0.0.1:6200/sda", "100", "r1z2-10.0.0.2:6200/sda", "100",
                "r1z3-10.0.0.3:6200/sda", "100")[0] == 0
    assert ring(capsys, b, "add", "--region", "1", "--zone", "3", "--ip", "10.0.0.3", "--port", "6200",
                "--device", "sdb", "--weight", "50")[0] == 0
    rc, out = ring(capsys, b, "add", "r1z1-10.0.0.1:6200/sda", "100")
    assert rc == 2 and "already exists" in out
    assert ring(capsys, b, "add", "r1z1-10.0.0.1/sda", "100")[0] == 2
    assert ring(capsys, b, "add", "r1z1-10.0.0.9:6200/sdz", "heavy")[0] == 2
    assert ring(capsys, b, "rebalance", "--seed", "3")[0] == 0
    rc, out = ring(capsys, b, "rebalance")
    assert rc == 1 and "No partitions could be reassigned" in out
    # A search value matching several devices changes them only with --yes.
    rc, out = ring(capsys, b, "set_weight", "z3", "10")
    assert rc == 2 and "matches 2 devices" in out
    assert ring(capsys, b, "set_weight", "z3", "10", "--yes")[0] == 0
    assert [d.weight for d in RingBuilder.load(b).devs if d] == [100, 100, 10, 10]
    assert ring(capsys, b, "remove", "d3")[0] == 0
    rc, out = ring(capsys, b)
    assert "DEL" in out
    assert ring(capsys, b, "pretend_min_part_hours_passed")[0] == 0
    rc, out = ring(capsys, b, "rebalance")
    assert rc in (0, 1) and "Removed device d3r1z3-10.0.0.3:6200/sdb" in out
    assert ring(capsys, b, "set_overload", "10%")[0] == 0
    assert RingBuilder.load(b).overload == pytest.approx(0.1)
    assert ring(capsys, b, "set_overload", "lots")[0] == 2
    assert ring(capsys, b, "set_min_part_hours", "2")[0] == 0
    assert ring(capsys, b, "set_replicas", "0")[0] == 2
    assert ring(capsys, b, "frobnicate")[0] == 2
    assert ring(capsys, str(tmp_path / "object.ring"), "search", "--path", "/a")[0] == 2  # no ring written yet
    (tmp_path / "evil.builder").write_bytes(b"\x80\x04\x95 pickled")
    rc, out = ring(capsys, str(tmp_path / "evil.builder"))
    assert rc == 2 and "not a readable ring file" in out
