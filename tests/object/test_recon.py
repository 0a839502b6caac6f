"""Recon: each object server's ``/recon/...`` answers (replication age per replicator, async pendings, quarantined
objects per policy, disk usage per device, ring md5s, unmounted devices) and ``tinystack object recon``, the
operator's summary over every node of the rings, with its exit status when a device is gone."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.object.test_background import H, cluster, copies
from tests.object.test_replicas import ACCOUNT, down
from tinystack.object.servers import recon
from tinystack.object.servers.node import StorageNode

pytestmark = pytest.mark.api
ROOT = Path(__file__).resolve().parents[2]


async def _recon(node: StorageNode, what: str) -> tuple[int, Any]:
    url = f"http://{node.settings.storage_ip}:{node.ports['object']}/recon/{what}"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, (await resp.json()) if resp.status == 200 else None


async def _cli(state: Path, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from tinystack.cli import main; sys.exit(main())", "object", "recon",
        "--state-dir", str(state), *extra, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


def test_recon_endpoints_and_cli(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/o", data=b"hello", headers=H)).status == 201
            status, rep = await _recon(node, "replication/object")
            assert status == 200 and rep["object_replication_last"] is None  # no pass yet
            before = time.time()
            await node.run_once("replicator")
            await node.run_once("container-replicator")
            next(iter(copies(node, "o").values())).write_bytes(b"HELLO")
            audit = await node.run_once("auditor")
            assert audit.quarantined == 1
            _, rep = await _recon(node, "replication/object")
            assert rep["object_replication_last"] >= before and rep["replication_stats"]["partitions"] > 0
            _, rep = await _recon(node, "replication/container")
            assert rep["container_replication_last"] >= before and rep["replication_stats"]["databases"] > 0
            assert (await _recon(node, "quarantined"))[1] == {"objects": 1, "containers": 0, "accounts": 0,
                                                              "policies": {"0": {"objects": 1}}}
            assert (await _recon(node, "async"))[1] == {"async_pending": 0}
            disks = (await _recon(node, "diskusage"))[1]
            assert sorted(d["device"] for d in disks) == ["d1", "d2", "d3", "d4"]
            assert all(d["size"] > d["avail"] > 0 for d in disks)
            md5s = (await _recon(node, "ringmd5"))[1]
            assert set(md5s) == {"account.ring", "container.ring", "object.ring", "object-1.ring"}
            assert (await _recon(node, "nothing"))[0] == 404
            for kind in ("account", "container"):  # every storage server answers recon
                url = f"http://{node.settings.storage_ip}:{node.ports[kind]}/recon/quarantined"
                async with aiohttp.ClientSession() as session, session.get(url) as resp:
                    assert resp.status == 200 and (await resp.json())["objects"] == 1
            assert (await _recon(node, "replication/bogus"))[0] == 404

            report = await recon.gather(node.settings)
            assert recon.healthy(report)
            assert "1/1 hosts matched, 0 error[s]" in recon.render(report)
            code, out = await _cli(tmp_path)
            assert code == 0, out
            assert "[quarantined] objects 1" in out and "d4:" in out and "1/1 hosts matched" in out
            code, out = await _cli(tmp_path, "--json")
            host = json.loads(out)["hosts"][f"{node.settings.storage_ip}:{node.ports['object']}"]
            assert host["quarantined"]["objects"] == 1
            # A device gone: recon says so and exits 1.
            away = down(node, "d2")
            code, out = await _cli(tmp_path)
            assert code == 1 and "d2: NOT MOUNTED" in out
            away.rename(node.settings.devices / "d2")

    asyncio.run(run())


def test_render_of_a_silent_host() -> None:
    report = {"time": time.time(), "ringmd5": {"object.ring": "x"},
              "hosts": {"10.0.0.9:6200": dict.fromkeys(recon.CHECKS)}}
    text = recon.render(report)
    assert "0/1 hosts matched, 1 error[s]" in text and "no answer from 10.0.0.9:6200" in text
    assert not recon.healthy(report)
