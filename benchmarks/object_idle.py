"""CPU and memory an idle storage node uses with N objects stored, this tree against a baseline commit, both in the
same run and the same time window.

Two ``tinystack storage`` processes run side by side, one from this tree and one from the baseline commit (taken
out with ``git archive``), each with the default background intervals (replicator every 30 s, expirer 60 s,
auditor 300 s, updater 5 s) on its own copy of the same devices: three devices in three zones, part power 10,
the default two storage policies, N small objects in one container put through the proxy (run in this process,
not counted). After both finished their first replication passes, the script samples ``/proc/<pid>/stat``
(utime + stime) of each over the window and prints, per process, the share of one core, the CPU seconds and the
RSS, then the ratio baseline / this tree, and the load average.

Usage (one command, from the repo root):
    PYTHONPATH=. .venv/bin/python benchmarks/object_idle.py [--objects 10000] [--seconds 60] [--baseline REF]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from tests.object.test_durability import _free_port
from tinystack import config as config_mod
from tinystack.core.auth import RequestContext
from tinystack.object import settings as settings_mod
from tinystack.object.proxy.app import build
from tinystack.object.ring import RingBuilder

ROOT = Path(__file__).resolve().parents[1]
# The last commit before the batched replicator, reclaim and the cached database sync hash.
BASELINE = "51f36a2"
KINDS = ("account", "container", "object")
RINGS = ("account", "container", "object", "object-1")
PREFIX, SUFFIX = "idleprefix", "idlesuffix"
ACCOUNT = "AUTH_idle"
TICKS = os.sysconf("SC_CLK_TCK")


class Node:
    """One ``tinystack storage`` process from ``tree`` over ``base``."""

    def __init__(self, name: str, base: Path, tree: Path) -> None:
        self.name, self.base, self.tree = name, base, tree
        self.ports = {kind: _free_port() for kind in KINDS}
        self.devices = base / "devs"
        self.rings = base / "rings"
        self.ini = base / "node.ini"
        self.proc: subprocess.Popen[str] | None = None

    def write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.ini.write_text("[object]\n" + "".join(f"{k}_port = {p}\n" for k, p in self.ports.items()) + (
            f"devices = {self.devices}\nrings_dir = {self.rings}\nhash_path_prefix = {PREFIX}\n"
            f"hash_path_suffix = {SUFFIX}\nfsync = false\nstorage_ip = 127.0.0.1\n"))
        self.rings.mkdir(parents=True, exist_ok=True)
        for ring in RINGS:
            builder = RingBuilder(10, 2.0 if ring == "object-1" else 3.0, 1)
            port = self.ports["object" if ring.startswith("object") else ring]
            for zone in (1, 2, 3):
                builder.add_dev({"region": 1, "zone": zone, "ip": "127.0.0.1", "port": port,
                                 "device": f"d{zone}", "weight": 100.0})
            builder.rebalance(seed=1)
            builder.save(self.rings / f"{ring}.builder")
            builder.write_ring(self.rings / f"{ring}.ring")
        for zone in (1, 2, 3):
            (self.devices / f"d{zone}").mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tinystack.cli import main; sys.exit(main())",
             "--config", str(self.ini), "storage", "--state-dir", str(self.base / "state")],
            cwd=self.tree, env={**os.environ, "PYTHONPATH": str(self.tree)}, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("tinystack storage ready"):
            raise RuntimeError(f"{self.name}: storage node did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
            self.proc = None

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def passes(self) -> dict[str, float]:
        """``finished`` of each replicator's last pass (0 before the first)."""
        out = {}
        for name in ("replication.json", "container_replication.json", "account_replication.json"):
            try:
                out[name] = float(json.loads((self.devices / name).read_text())["finished"])
            except (FileNotFoundError, ValueError, KeyError):
                out[name] = 0.0
        return out


async def load(node: Node, count: int) -> float:
    """``count`` 64-byte objects in one container through the proxy; seconds taken."""
    cfg = config_mod.load(None, environ={}, overrides={
        "state_dir": str(node.base / "proxy"), "object__rings_dir": str(node.rings),
        "object__storage_node": "false", "object__hash_path_prefix": PREFIX, "object__hash_path_suffix": SUFFIX})
    settings = settings_mod.load(cfg)

    def validator(token: str) -> RequestContext:
        return RequestContext(user_id="u", project_id="idle", roles=("admin",), token=token)

    client = TestClient(TestServer(build(settings, validator).build()))
    await client.start_server()
    headers = {"X-Auth-Token": "t"}
    started = time.monotonic()
    try:
        resp = await client.put(f"/v1/{ACCOUNT}/c", headers=headers)
        assert resp.status == 201, resp.status
        names = iter(range(count))

        async def worker() -> None:
            for i in names:
                r = await client.put(f"/v1/{ACCOUNT}/c/o{i:06d}", data=b"%064d" % i, headers=headers)
                assert r.status == 201, r.status

        await asyncio.gather(*(worker() for _ in range(16)))
    finally:
        await client.close()
    return time.monotonic() - started


def baseline_tree(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "tinystack"],
                             check=True, capture_output=True).stdout
    into.mkdir(parents=True)
    tar_path = into / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    tar_path.unlink()
    return into


def wait_first_passes(nodes: list[Node], since: float, limit: float = 900) -> None:
    deadline = time.monotonic() + limit
    while not all(all(t > since for t in n.passes().values()) for n in nodes):
        if time.monotonic() > deadline:
            late = {n.name: [k for k, t in n.passes().items() if t <= since] for n in nodes}
            raise RuntimeError(f"the first replication passes did not finish in time: {late}")
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the baseline tree (default %(default)s)")
    parser.add_argument("--baseline-dir", type=Path, help="a checkout to run as the baseline instead of --baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-object-idle-") as tmp:
        base = Path(tmp)
        current = Node("this tree", base / "current", ROOT)
        if args.baseline_dir is not None:
            baseline = Node(f"baseline {args.baseline_dir}", base / "baseline", args.baseline_dir.resolve())
        else:
            baseline = Node(f"baseline {args.baseline}", base / "baseline", baseline_tree(args.baseline, base / "src"))
        nodes = [baseline, current]
        try:
            current.write_config()
            current.start()
            load_seconds = asyncio.run(load(current, args.objects))
            time.sleep(8)  # the updater sends the container's counts to the account
            current.stop()
            baseline.write_config()
            # The same objects and databases for the baseline (its rings differ in ports only).
            shutil.rmtree(baseline.devices)
            shutil.copytree(current.devices, baseline.devices, symlinks=True)
            for name in ("replication.json", "container_replication.json", "account_replication.json"):
                (current.devices / name).unlink(missing_ok=True)
                (baseline.devices / name).unlink(missing_ok=True)
            started = time.time()
            for node in nodes:
                node.start()
            wait_first_passes(nodes, started)
            time.sleep(2)
            before = {n.name: n.cpu_seconds() for n in nodes}
            load_before = os.getloadavg()
            window_start = time.monotonic()
            time.sleep(args.seconds)
            wall = time.monotonic() - window_start
            result: dict[str, dict[str, float]] = {}
            for n in nodes:
                cpu = n.cpu_seconds() - before[n.name]
                result[n.name] = {"core_percent": round(100 * cpu / wall, 3), "cpu_seconds": round(cpu, 3),
                                  "rss_mb": round(n.rss_mb(), 1)}
        finally:
            for node in nodes:
                node.stop()
        # Printed before the temporary devices go: removing tens of thousands of files takes minutes when loaded.
        cur, old = result[current.name], result[baseline.name]
        print(json.dumps({"objects": args.objects, "window_seconds": round(wall, 1),
                          "load_seconds": round(load_seconds, 1), "nodes": result,
                          "cpu_ratio_baseline_over_current": round(old["cpu_seconds"] / max(cur["cpu_seconds"], 1e-6), 2),
                          "loadavg_before": load_before, "loadavg_after": os.getloadavg()}, indent=1), flush=True)


if __name__ == "__main__":
    main()
