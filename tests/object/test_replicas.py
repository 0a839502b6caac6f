"""Replication as the proxy does it, on a storage node of four devices (three replicas and one handoff): real
copies on distinct devices, quorum writes and handoffs when devices are down, reads that fall back, last write
wins by X-Timestamp, and async pendings replayed when a container server comes back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tinystack import config as config_mod
from tinystack.core.auth import RequestContext
from tinystack.object import settings as settings_mod
from tinystack.object.common import normalize_timestamp, quote_path
from tinystack.object.proxy.app import build
from tinystack.object.servers.node import StorageNode
from tinystack.object.servers.updates import pending_files, replay_pendings

pytestmark = pytest.mark.api

ACCOUNT = "AUTH_p1"


def _validator(token: str) -> RequestContext:
    return RequestContext(user_id="u1", project_id="p1", roles=("member",), token=token)


@asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[StorageNode, TestClient]]:
    cfg = config_mod.load(None, environ={}, overrides={
        "state_dir": str(tmp_path), "object__device_count": "4", "object__part_power": "4",
        "object__account_port": "0", "object__container_port": "0", "object__object_port": "0",
        "object__updater_interval": "3600"})
    s = settings_mod.load(cfg)
    node = StorageNode(s)
    await node.start()
    client = TestClient(TestServer(build(s, _validator).build()))
    await client.start_server()
    try:
        yield node, client
    finally:
        await client.close()
        await node.stop()


def copies(node: StorageNode, obj: str) -> dict[str, Path]:
    """Device -> the object's .data file there."""
    ring = node.node.rings["object"]
    part = ring.get_part(ACCOUNT, "c", obj)
    out = {}
    for dev_dir in node.settings.devices.iterdir():
        for data in (dev_dir / "objects" / str(part)).glob("*/*/*.data"):
            out[dev_dir.name] = data
    return out


def down(node: StorageNode, device: str) -> Path:
    """Takes a device away (its servers answer 507) and returns where it went."""
    target = node.settings.devices / f"{device}.away"
    (node.settings.devices / device).rename(target)
    return target


def test_quorum_handoffs_and_fallback(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            h = {"X-Auth-Token": "t"}
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=h)).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/o", data=b"v1", headers=h)).status == 201
            first = copies(node, "o")
            assert len(first) == 3 and len({p.read_bytes() for p in first.values()}) == 1

            ring = node.node.rings["object"]
            primaries = [d.device for d in ring.get_part_nodes(ring.get_part(ACCOUNT, "c", "o"))]
            away = down(node, primaries[0])
            resp = await client.put(f"/v1/{ACCOUNT}/c/o", data=b"v2", headers=h)
            assert resp.status == 201
            now = copies(node, "o")
            handoff = ({p.name for p in node.settings.devices.iterdir() if not p.name.endswith(".away")}
                       - set(primaries)).pop()
            assert now[handoff].read_bytes() == b"v2"  # the handoff holds the third copy
            got = await client.get(f"/v1/{ACCOUNT}/c/o", headers=h)
            assert got.status == 200 and await got.read() == b"v2"  # the first primary is down: read falls back

            away2 = down(node, primaries[1])
            assert (await client.put(f"/v1/{ACCOUNT}/c/o", data=b"v3", headers=h)).status == 201  # 2 of 3 written
            away3 = down(node, primaries[2])
            # One device left: no quorum, the write fails.
            assert (await client.put(f"/v1/{ACCOUNT}/c/o", data=b"v4", headers=h)).status == 503
            for path, name in ((away, primaries[0]), (away2, primaries[1]), (away3, primaries[2])):
                path.rename(node.settings.devices / name)

    asyncio.run(run())


def test_last_write_wins_and_async_pendings(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            h = {"X-Auth-Token": "t"}
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=h)).status == 201
            dev = node.node.rings["object"].devs[0]
            base = f"http://{dev.ip}:{dev.port}"
            path = quote_path(dev.device, "0", ACCOUNT, "c", "x")
            with socket.socket() as sock:  # a port nobody listens on: the container server "down"
                sock.bind(("127.0.0.1", 0))
                dead = f"127.0.0.1:{sock.getsockname()[1]}"
            async with aiohttp.ClientSession() as http:
                newer, older = normalize_timestamp(2000000000), normalize_timestamp(1900000000)
                headers = {"X-Timestamp": newer, "Content-Type": "text/plain", "X-Container-Host": dead,
                           "X-Container-Device": "d1", "X-Container-Partition": "0"}
                async with http.put(base + path, data=b"new", headers=headers) as r:
                    assert r.status == 201
                async with http.put(base + path, data=b"old", headers={**headers, "X-Timestamp": older}) as r:
                    assert r.status == 409  # an older write never replaces a newer one
                async with http.get(base + path) as r:
                    assert await r.read() == b"new"
            assert len(pending_files(node.settings.devices)) == 1
            assert await replay_pendings(node.node) == 1
            assert pending_files(node.settings.devices) == []
            listed = await client.get(f"/v1/{ACCOUNT}/c", headers=h)
            assert (await listed.text()).split() == ["x"]

    asyncio.run(run())
