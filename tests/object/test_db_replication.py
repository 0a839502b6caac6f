"""Account and container database replication, one pass at a time on a node of four devices: a wiped device's
container and account databases come back with every row and the metadata, a second pass pushes nothing, a
database written to a handoff goes home and leaves the handoff, and the verbs refuse bad input."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.object.test_background import H, cluster
from tests.object.test_replicas import ACCOUNT, down
from tinystack.object.common import hash_path
from tinystack.object.servers.db import db_path
from tinystack.object.servers.node import StorageNode
from tinystack.object.servers.replication import MARK

pytestmark = pytest.mark.api


def _db(node: StorageNode, kind: str, device: str, *names: str) -> Path:
    s = node.settings
    name_hash = hash_path(s.hash_path_prefix, s.hash_path_suffix, *names)
    part = node.node.rings[kind].get_part(*names)
    return db_path(s.devices / device, kind, part, name_hash)


async def _backend(node: StorageNode, kind: str, dev: Any, *names: str, mark: bool = False,
                   method: str = "GET", body: bytes | None = None, path: str | None = None) -> tuple[int, Any]:
    part = node.node.rings[kind].get_part(*names) if names else 0
    url = f"http://{dev.ip}:{dev.port}" + (path or f"/{dev.device}/{part}/" + "/".join(names))
    async with aiohttp.ClientSession() as session, session.request(
            method, url, data=body, headers={MARK: "true"} if mark else {}) as resp:
        data = await resp.read()
        return resp.status, json.loads(data) if resp.status == 200 else data


def test_wiped_device_gets_its_listings_back(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers={**H, "X-Container-Meta-Color": "blue"})).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c2", headers=H)).status == 201
            names = [f"o{i:02d}" for i in range(30)]
            for name in names:
                assert (await client.put(f"/v1/{ACCOUNT}/c/{name}", data=b"x" * 3, headers=H)).status == 201
            await client.delete(f"/v1/{ACCOUNT}/c/o00", headers=H)
            await node.container.flush()
            cring, aring = node.node.rings["container"], node.node.rings["account"]
            victim = cring.get_nodes(ACCOUNT, "c")[1][0]
            for kind in ("containers", "accounts"):
                shutil.rmtree(node.settings.devices / victim.device / kind, ignore_errors=True)
            assert not _db(node, "container", victim.device, ACCOUNT, "c").exists()
            assert (await _backend(node, "container", victim, ACCOUNT, "c"))[0] == 404

            cstats = await node.run_once("container-replicator")
            astats = await node.run_once("account-replicator")
            assert cstats.created >= 1 and cstats.rows_pushed >= 30 and cstats.failures == 0
            assert astats.failures == 0
            status, rows = await _backend(node, "container", victim, ACCOUNT, "c")
            assert status == 200 and [r["name"] for r in rows] == names[1:]
            async with aiohttp.ClientSession() as session, session.head(
                    f"http://{victim.ip}:{victim.port}/{victim.device}/{cring.get_part(ACCOUNT, 'c')}/{ACCOUNT}/c"
                    ) as head:
                assert head.headers["X-Container-Meta-Color"] == "blue"
                assert head.headers["X-Container-Object-Count"] == "29"
            for dev in aring.get_nodes(ACCOUNT)[1]:
                status, rows = await _backend(node, "account", dev, ACCOUNT)
                assert status == 200 and [r["name"] for r in rows] == ["c", "c2"], dev.device
            again = await node.run_once("container-replicator")
            assert again.rows_pushed == 0 and again.created == 0 and again.in_sync > 0
            # Each database keeps (on disk) the last of its rows each replica took; a replica made again is new.
            assert (await client.put(f"/v1/{ACCOUNT}/c/late", data=b"1", headers=H)).status == 201
            victim_id = node.container.brokers.get(_db(node, "container", victim.device, ACCOUNT, "c")).db_id()
            # Whichever other primary got there first pushed the rows (the other then found it in sync).
            assert max(node.container.brokers.get(_db(node, "container", d.device, ACCOUNT, "c")).sync_point(victim_id)
                       for d in cring.get_nodes(ACCOUNT, "c")[1][1:]) > 0
            shutil.rmtree(node.settings.devices / victim.device / "containers" / str(cring.get_part(ACCOUNT, "c")))
            node.container.brokers.drop(_db(node, "container", victim.device, ACCOUNT, "c"))
            third = await node.run_once("container-replicator")
            assert third.created >= 1 and third.rows_pushed >= 30  # a new replica id: every row again
            record = json.loads((node.settings.devices / "container_replication.json").read_text())
            assert record["rows_pushed"] == third.rows_pushed and record["databases"] > 0

    asyncio.run(run())


def test_handoff_database_goes_home(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            cring = node.node.rings["container"]
            _part, primaries = cring.get_nodes(ACCOUNT, "h")
            away = down(node, primaries[0].device)
            assert (await client.put(f"/v1/{ACCOUNT}/h", headers=H)).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/h/o", data=b"1", headers=H)).status == 201
            away.rename(node.settings.devices / primaries[0].device)
            handoff = next(d for d in node.settings.devices.iterdir()
                           if d.name not in {p.device for p in primaries} and _db(node, "container", d.name,
                                                                                   ACCOUNT, "h").exists())
            assert not _db(node, "container", primaries[0].device, ACCOUNT, "h").exists()
            stats = await node.run_once("container-replicator")
            assert stats.removed_handoffs >= 1
            assert _db(node, "container", primaries[0].device, ACCOUNT, "h").exists()
            assert not _db(node, "container", handoff.name, ACCOUNT, "h").exists()
            status, rows = await _backend(node, "container", primaries[0], ACCOUNT, "h")
            assert status == 200 and [r["name"] for r in rows] == ["o"]

    asyncio.run(run())


def test_db_verbs_refuse_bad_input(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            dev = node.node.rings["container"].devs[0]
            bad = [("GET", "/d1/0/nothex", None), ("POST", "/d1/0/" + "a" * 32, b"not json"),
                   ("POST", "/d1/0/" + "a" * 32, b'{"info": [], "rows": {}}'),
                   ("POST", "/d1/x/" + "a" * 32, b"{}"), ("GET", "/../0/" + "a" * 32, None)]
            for method, path, body in bad:
                status, _ = await _backend(node, "container", dev, mark=True, method=method, body=body, path=path)
                assert status == 400, (method, path)
            assert (await _backend(node, "container", dev, mark=True, path="/d1/0/" + "b" * 32))[0] == 404
            assert not any(node.settings.devices.glob("*/containers/0/*/" + "a" * 32))

    asyncio.run(run())


def test_old_account_database_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    from tinystack.object.servers.accountdb import AccountBroker

    path = tmp_path / "a.db"
    old = sqlite3.connect(path)
    old.executescript("""
    CREATE TABLE container (name TEXT PRIMARY KEY, put_timestamp TEXT NOT NULL, delete_timestamp TEXT NOT NULL,
        object_count INTEGER NOT NULL, bytes_used INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE stat (account TEXT, created_at TEXT, put_timestamp TEXT, delete_timestamp TEXT,
        status_changed_at TEXT, container_count INTEGER, object_count INTEGER, bytes_used INTEGER, metadata TEXT);
    INSERT INTO stat VALUES ('AUTH_x', '1', '1', '0', '1', 1, 2, 3, '{}');
    INSERT INTO container VALUES ('c', '0000000001.00000', '0', 2, 3, 0);
    """)
    old.close()
    broker = AccountBroker(path)
    assert broker.policy_stats() == {0: (1, 2, 3)}
    broker.put_container("d", "0000000002.00000", "0", 1, 5, policy=1)
    assert broker.policy_stats() == {0: (1, 2, 3), 1: (1, 1, 5)}
    broker.close()
