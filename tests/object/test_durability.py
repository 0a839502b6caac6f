"""Durability with real storage processes: three ``tinystack storage`` nodes (two devices each, one zone per
node, the rings shared) behind a test proxy. A node stopped during the PUTs loses no acknowledged object; a
wiped device (its objects, then its container and account databases) and a corrupt file are repaired by the
nodes' own replicators and auditor. Prints the figures docs/performance.md reports (objects lost, seconds per
repair)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.object.test_replicas import ACCOUNT, _validator
from tinystack import config as config_mod
from tinystack.object import settings as settings_mod
from tinystack.object.common import hash_path
from tinystack.object.proxy.app import build
from tinystack.object.ring import RingBuilder

pytestmark = [pytest.mark.api, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# 1,000 is the acceptance figure (TINYSTACK_DURABILITY_PUTS=1000, about 4 minutes here); 300 keeps the run short.
N = int(os.environ.get("TINYSTACK_DURABILITY_PUTS", "300"))
PREFIX, SUFFIX = "dprefix", "dsuffix"
KINDS = ("account", "container", "object")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Node:
    def __init__(self, base: Path, index: int, rings: Path) -> None:
        self.state = base / f"node{index}"
        self.devices = self.state / "devs"
        self.ports = {kind: _free_port() for kind in KINDS}
        self.ini = base / f"node{index}.ini"
        self.ini.write_text("[object]\n" + "".join(f"{k}_port = {p}\n" for k, p in self.ports.items()) + (
            f"devices = {self.devices}\nrings_dir = {rings}\nhash_path_prefix = {PREFIX}\n"
            f"hash_path_suffix = {SUFFIX}\nreplicator_interval = 1\nauditor_interval = 1\nexpirer_interval = 0\n"
            "updater_interval = 1\nfsync = false\npolicies = Policy-0\nauditor_files_per_second = 200\n"))
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tinystack.cli import main; sys.exit(main())",
             "--config", str(self.ini), "storage", "--state-dir", str(self.state)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("tinystack storage ready"), line

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(30) == 0
            self.proc = None


def build_rings(rings: Path, nodes: list[Node]) -> None:
    rings.mkdir(parents=True)
    for kind in KINDS:
        builder = RingBuilder(6, 3.0, 1)
        for zone, node in enumerate(nodes, start=1):
            for dev in ("d1", "d2"):
                builder.add_dev({"region": 1, "zone": zone, "ip": "127.0.0.1", "port": node.ports[kind],
                                 "device": dev, "weight": 100.0})
        builder.rebalance(seed=1)
        builder.write_ring(rings / f"{kind}.ring")


def copies_of(nodes: list[Node], ring: Any, part: int, name: str) -> int:
    """How many of the object's primary devices hold it (handoff copies do not count)."""
    name_hash = hash_path(PREFIX, SUFFIX, ACCOUNT, "c", name)
    by_port = {node.ports["object"]: node for node in nodes}
    found = 0
    for dev in ring.get_part_nodes(part):
        directory = by_port[dev.port].devices / dev.device / "objects" / str(part) / name_hash[-3:] / name_hash
        found += any(directory.glob("*.data"))
    return found


async def wait_for(check: Callable[[], bool], limit: float) -> float:
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        assert time.monotonic() - started < limit, "repair did not finish in time"
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def test_durability(tmp_path: Path) -> None:
    rings = tmp_path / "rings"
    nodes = [Node(tmp_path, i, rings) for i in range(3)]
    build_rings(rings, nodes)
    cfg = config_mod.load(None, environ={}, overrides={
        "state_dir": str(tmp_path / "proxy"), "object__rings_dir": str(rings), "object__storage_node": "false",
        "object__hash_path_prefix": PREFIX, "object__hash_path_suffix": SUFFIX})
    proxy_settings = settings_mod.load(cfg)
    from tinystack.object.ring import Ring

    object_ring = Ring.load(rings / "object.ring", prefix=PREFIX, suffix=SUFFIX)
    figures: dict[str, float] = {}

    async def run() -> None:
        client = TestClient(TestServer(build(proxy_settings, _validator).build()))
        await client.start_server()
        h = {"X-Auth-Token": "t"}
        try:
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=h)).status == 201
            acked: list[str] = []
            names = [f"obj-{i:05d}" for i in range(N)]
            queue = list(reversed(names))

            async def worker() -> None:
                while queue:
                    name = queue.pop()
                    if len(queue) == N // 3:
                        await asyncio.to_thread(nodes[2].stop)  # one node goes away mid-run
                    try:
                        resp = await client.put(f"/v1/{ACCOUNT}/c/{name}", data=name.encode() * 10, headers=h)
                    except aiohttp.ClientError:
                        continue
                    if resp.status == 201:
                        acked.append(name)

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(16)))
            figures["put_seconds"] = time.monotonic() - started
            figures["acked"] = len(acked)

            async def lost() -> int:
                missing = 0
                for name in acked:
                    resp = await client.get(f"/v1/{ACCOUNT}/c/{name}", headers=h)
                    missing += resp.status != 200 or await resp.read() != name.encode() * 10
                return missing

            figures["lost_node_down"] = await lost()
            await asyncio.to_thread(nodes[2].start)
            parts = {name: object_ring.get_part(ACCOUNT, "c", name) for name in acked}

            def all_three() -> bool:
                return all(copies_of(nodes, object_ring, parts[n], n) >= 3 for n in acked)

            figures["restart_repair_seconds"] = await wait_for(all_three, 300)
            wiped = nodes[0].devices / "d1" / "objects"
            wiped.rename(tmp_path / "wiped")  # at once, as the running node may write into it meanwhile
            shutil.rmtree(tmp_path / "wiped")
            figures["wiped_objects"] = sum(1 for n in acked if copies_of(nodes, object_ring, parts[n], n) < 3)
            figures["wipe_repair_seconds"] = await wait_for(all_three, 300)

            victim = acked[0]
            name_hash = hash_path(PREFIX, SUFFIX, ACCOUNT, "c", victim)
            data = next(p for node in nodes for p in node.devices.glob(
                f"d*/objects/{parts[victim]}/{name_hash[-3:]}/{name_hash}/*.data"))
            data.write_bytes(b"!" + data.read_bytes()[1:])
            corrupted = time.monotonic()
            quarantine = data.parents[4] / "quarantined" / "objects"
            figures["audit_seconds"] = await wait_for(lambda: quarantine.is_dir() and any(quarantine.iterdir()), 120)
            resp = await client.get(f"/v1/{ACCOUNT}/c/{victim}", headers=h)
            assert resp.status == 200 and await resp.read() == victim.encode() * 10
            await wait_for(lambda: data.exists() and data.read_bytes() == victim.encode() * 10, 120)
            figures["corrupt_repair_seconds"] = time.monotonic() - corrupted  # quarantine and restore
            figures["lost_total"] = await lost()

            # The container's databases on one device go; the db replicators bring every row back.
            cring = Ring.load(rings / "container.ring", prefix=PREFIX, suffix=SUFFIX)
            cpart, cdevs = cring.get_nodes(ACCOUNT, "c")
            victim_dev = cdevs[0]
            victim = next(n for n in nodes if n.ports["container"] == victim_dev.port)
            for kind in ("containers", "accounts"):
                gone = victim.devices / victim_dev.device / kind
                if gone.exists():
                    gone.rename(tmp_path / f"wiped-{kind}")
                    shutil.rmtree(tmp_path / f"wiped-{kind}")
            listing_url = f"http://127.0.0.1:{victim_dev.port}/{victim_dev.device}/{cpart}/{ACCOUNT}/c?limit=10000"
            want = set(acked)

            async def listed() -> bool:
                async with aiohttp.ClientSession() as session, session.get(listing_url) as resp:
                    return resp.status == 200 and want <= {r["name"] for r in await resp.json()}

            started = time.monotonic()
            while not await listed():
                assert time.monotonic() - started < 120, "the container database was not restored in time"
                await asyncio.sleep(0.5)
            figures["db_wipe_repair_seconds"] = time.monotonic() - started
        finally:
            await client.close()

    try:
        for node in nodes:
            node.start()
        asyncio.run(run())
    finally:
        for node in nodes:
            node.stop()
        print("durability figures:", {k: round(v, 2) for k, v in figures.items()})
    assert figures["lost_node_down"] == 0 and figures["lost_total"] == 0
    assert figures["acked"] >= N * 0.9 and figures["db_wipe_repair_seconds"] < 120
