"""``tinystack storage``: a storage node alone refuses to start without its rings (it never builds them from its
own devices: they would not match the other nodes'), serves the account, container and object servers on the
ports of the rings the operator built with ``tinystack ring`` and copied to it, and stops cleanly on SIGTERM.
``tinystack up``'s node builds missing rings only while every ring it has holds its own devices alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.object.test_durability import _free_port
from tinystack import config as config_mod
from tinystack.object import settings as settings_mod
from tinystack.object.ring import Ring
from tinystack.object.ring.bootstrap import MissingRings, rings_to_build
from tinystack.object.ring.cli import main as ring_main
from tinystack.object.servers.node import StorageNode

pytestmark = pytest.mark.api

ROOT = Path(__file__).resolve().parents[2]
RINGS = ("account", "container", "object", "object-1")
COMMAND = [sys.executable, "-c", "import sys; from tinystack.cli import main; sys.exit(main())"]


def ship_rings(rings: Path, ports: dict[str, int], ip: str = "127.0.0.1") -> None:
    """What an operator does: every ring built with ``tinystack ring`` (three devices, one zone each)."""
    rings.mkdir(parents=True, exist_ok=True)
    for name in RINGS:
        builder = str(rings / f"{name}.builder")
        port = ports["object" if name.startswith("object") else name]
        assert ring_main([builder, "create", "4", "2" if name == "object-1" else "3", "1"], lambda _: None) == 0
        for zone in (1, 2, 3):
            assert ring_main([builder, "add", f"r1z{zone}-{ip}:{port}/d{zone}", "100"], lambda _: None) == 0
        assert ring_main([builder, "rebalance"], lambda _: None) in (0, 1)
        assert ring_main([builder, "write_ring"], lambda _: None) == 0


def start(state: Path, ini: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from tinystack.cli import main; sys.exit(main())",
                             "--config", str(ini), "storage", "--state-dir", str(state)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("tinystack storage ready"), line
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_storage_node_alone(tmp_path: Path) -> None:
    ports = {kind: _free_port() for kind in ("account", "container", "object")}
    ini = tmp_path / "storage.ini"
    ini.write_text("[object]\n" + "".join(f"{k}_port = {p}\n" for k, p in ports.items()))
    state = tmp_path / "state"
    rings = state / "object" / "rings"

    refused = subprocess.run([*COMMAND, "--config", str(ini), "storage", "--state-dir", str(state)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "tinystack storage" in refused.stderr
    assert "account.ring" in refused.stderr and "tinystack ring" in refused.stderr, refused.stderr
    assert not rings.exists() or not list(rings.glob("*.ring"))  # nothing built

    ship_rings(rings, ports)
    proc = start(state, ini)
    try:
        ring = Ring.load(rings / "account.ring")
        devs = [d for d in ring.devs if d is not None]
        assert sorted(d.device for d in devs) == ["d1", "d2", "d3"] and len({d.zone for d in devs}) == 3
        dev = devs[0]
        base = f"http://{dev.ip}:{dev.port}/{dev.device}/0/AUTH_x"
        assert requests.put(base, headers={"X-Timestamp": "1700000000.00000"}, timeout=10).status_code == 201
        assert requests.head(base, timeout=10).headers["X-Account-Container-Count"] == "0"
        assert requests.put(f"http://{dev.ip}:{dev.port}/nodev/0/AUTH_x", headers={"X-Timestamp": "1700000000.00000"},
                            timeout=10).status_code == 507
    finally:
        stop(proc)
    # A second start serves the same rings; a ring gone missing since is refused again, not rebuilt.
    proc = start(state, ini)
    try:
        assert requests.head(base, timeout=10).status_code == 204
    finally:
        stop(proc)
    (rings / "object-1.ring").unlink()
    again = subprocess.run([*COMMAND, "--config", str(ini), "storage", "--state-dir", str(state)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "object-1.ring" in again.stderr and not (rings / "object-1.ring").exists()


@pytest.mark.unit
def test_rings_to_build(tmp_path: Path) -> None:
    rings = tmp_path / "rings"
    own = {name: ("127.0.0.1", 6202 if name == "account" else 6201 if name == "container" else 6200)
           for name in RINGS}
    # Alone with nothing yet: build every ring; never when the node may not build.
    assert rings_to_build(rings, own, may_build=True) == list(RINGS)
    with pytest.raises(MissingRings, match=r"account\.ring"):
        rings_to_build(rings, own, may_build=False)
    # Its own rings only (a policy added to a one-machine cloud): the missing one is built.
    ship_rings(rings, {"account": 6202, "container": 6201, "object": 6200})
    (rings / "object-1.ring").unlink()
    assert rings_to_build(rings, own, may_build=True) == ["object-1"]
    # Rings that hold another node's devices: a missing one is refused, naming the other nodes.
    other = tmp_path / "other"
    ship_rings(other, {"account": 6202, "container": 6201, "object": 6200}, ip="10.0.0.9")
    (other / "object-1.ring").unlink()
    with pytest.raises(MissingRings, match=r"10\.0\.0\.9:6200"):
        rings_to_build(other, own, may_build=True)
    assert rings_to_build(other, {"account": own["account"]}, may_build=True) == []  # nothing missing


def test_up_node_refuses_a_missing_ring_of_a_shared_cluster(tmp_path: Path) -> None:
    """``tinystack up``'s node (may build) with rings naming another machine and one policy's ring missing."""
    ports = {kind: _free_port() for kind in ("account", "container", "object")}
    rings = tmp_path / "rings"
    ship_rings(rings, ports, ip="10.0.0.9")
    (rings / "object-1.ring").unlink()
    cfg = config_mod.load(None, environ={}, overrides={
        "state_dir": str(tmp_path / "state"), "object__rings_dir": str(rings), "object__fsync": "false",
        **{f"object__{k}_port": str(p) for k, p in ports.items()}})
    node = StorageNode(settings_mod.load(cfg))

    async def run() -> None:
        try:
            with pytest.raises(MissingRings, match=r"object-1\.ring"):
                await node.start()
        finally:
            await node.stop()

    asyncio.run(run())
    assert not (rings / "object-1.ring").exists()
