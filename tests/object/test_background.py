"""The storage node's background daemons, one pass at a time, on a node of four devices (three replicas and a
handoff): the replicator restores a wiped device, moves a handoff's partition home and spreads tombstones; the
auditor quarantines a corrupt file and the replicator restores it; the expirer removes due objects from disk
and listing; the replication verbs refuse bad input."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.object.test_replicas import ACCOUNT, _validator, down
from tinystack import config as config_mod
from tinystack.object import settings as settings_mod
from tinystack.object.common import hash_path
from tinystack.object.proxy.app import build
from tinystack.object.servers import diskfile, expirer
from tinystack.object.servers.expirer import expire_once
from tinystack.object.servers.node import StorageNode

pytestmark = pytest.mark.api
H = {"X-Auth-Token": "t"}


@asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[StorageNode, TestClient]]:
    cfg = config_mod.load(None, environ={}, overrides={
        "state_dir": str(tmp_path), "object__device_count": "4", "object__part_power": "4",
        "object__account_port": "0", "object__container_port": "0", "object__object_port": "0",
        "object__updater_interval": "3600", "object__replicator_interval": "0", "object__auditor_interval": "0",
        "object__expirer_interval": "0", "object__fsync": "false"})
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
    """Device -> the .data file of ``obj`` there."""
    s = node.settings
    name_hash = hash_path(s.hash_path_prefix, s.hash_path_suffix, ACCOUNT, "c", obj)
    part = node.node.rings["object"].get_part(ACCOUNT, "c", obj)
    out = {}
    for dev_dir in s.devices.iterdir():
        for data in (dev_dir / "objects" / str(part) / name_hash[-3:] / name_hash).glob("*.data"):
            out[dev_dir.name] = data
    return out


def primaries(node: StorageNode, obj: str) -> list[str]:
    ring = node.node.rings["object"]
    return [d.device for d in ring.get_part_nodes(ring.get_part(ACCOUNT, "c", obj))]


def test_replicator_restores_a_wiped_device(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            names = [f"o{i}" for i in range(40)]
            for name in names:
                assert (await client.put(f"/v1/{ACCOUNT}/c/{name}", data=name.encode(), headers=H)).status == 201
            wiped = node.settings.devices / "d1"
            shutil.rmtree(wiped / "objects")
            lost = [n for n in names if "d1" in primaries(node, n)]
            assert lost and all("d1" not in copies(node, n) for n in lost)
            stats = await node.run_once("replicator")
            assert stats.pushed >= len(lost) and stats.failures == 0
            for name in names:
                held = copies(node, name)
                assert set(held) == set(primaries(node, name))
                assert {p.read_bytes() for p in held.values()} == {name.encode()}
            again = await node.run_once("replicator")
            assert again.pushed == 0  # in sync: the suffix hashes match
            record = json.loads((node.settings.devices / "replication.json").read_text())
            assert record["pushed"] == 0 and record["partitions"] > 0

    asyncio.run(run())


def test_handoff_goes_home_and_tombstones_win(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/o", data=b"v1", headers=H)).status == 201
            home = primaries(node, "o")
            away = down(node, home[0])
            assert (await client.put(f"/v1/{ACCOUNT}/c/o", data=b"v2", headers=H)).status == 201
            handoff = (set(copies(node, "o")) - set(home)).pop()
            away.rename(node.settings.devices / home[0])
            stats = await node.run_once("replicator")
            assert stats.removed_handoffs >= 1
            held = copies(node, "o")
            assert set(held) == set(home) and {p.read_bytes() for p in held.values()} == {b"v2"}
            part = node.node.rings["object"].get_part(ACCOUNT, "c", "o")
            assert not (node.settings.devices / handoff / "objects" / str(part)).exists()

            away = down(node, home[1])
            assert (await client.delete(f"/v1/{ACCOUNT}/c/o", headers=H)).status == 204
            away.rename(node.settings.devices / home[1])
            assert home[1] in copies(node, "o")  # the old copy is still there
            await node.run_once("replicator")
            assert copies(node, "o") == {}  # the tombstone reached every primary and won
            got = await client.get(f"/v1/{ACCOUNT}/c/o", headers=H)
            assert got.status == 404

    asyncio.run(run())


def test_auditor_quarantines_and_replicator_restores(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            body = b"precious bytes" * 100
            assert (await client.put(f"/v1/{ACCOUNT}/c/o", data=body, headers=H)).status == 201
            first = primaries(node, "o")[0]
            data = copies(node, "o")[first]
            data.write_bytes(b"X" + body[1:])  # same size, wrong MD5
            stats = await node.run_once("auditor")
            assert stats.quarantined == 1 and stats.checked >= 3
            assert first not in copies(node, "o")
            assert list((node.settings.devices / first / "quarantined" / "objects").iterdir())
            got = await client.get(f"/v1/{ACCOUNT}/c/o", headers=H)
            assert got.status == 200 and await got.read() == body
            await node.run_once("replicator")
            assert copies(node, "o")[first].read_bytes() == body
            assert (await node.run_once("auditor")).quarantined == 0

    asyncio.run(run())


def test_expirer_removes_due_objects(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            soon = str(int(time.time()) + 100)
            assert (await client.put(f"/v1/{ACCOUNT}/c/gone", data=b"x",
                                     headers={**H, "X-Delete-At": soon})).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/kept", data=b"y", headers=H)).status == 201
            assert (await node.run_once("expirer")).expired == 0  # not due yet
            done = await expire_once(node.node, node.ports["object"], now=float(soon) + 1)
            assert done.expired >= 1 and done.failures == 0
            assert copies(node, "gone") == {} and len(copies(node, "kept")) == 3
            listed = await client.get(f"/v1/{ACCOUNT}/c", headers=H)
            assert (await listed.text()).split() == ["kept"]

    asyncio.run(run())


def test_replication_verbs_refuse_bad_input(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, _client):
            dev = node.node.rings["object"].devs[0]
            base = f"http://{dev.ip}:{dev.port}"
            good = "0123456789abcdef0123456789abcdef"
            meta = json.dumps({"etag": "nope", "content-length": 1})
            async with aiohttp.ClientSession() as http:
                for method, path, headers, want in (
                    ("GET", f"/{dev.device}/x", {}, 400),
                    ("GET", f"/{dev.device}/0?suffixes=../", {}, 400),
                    ("GET", "/nodev/0", {}, 507),
                    ("PUT", f"/{dev.device}/0/{good}/1.data", {"X-Object-Metadata": meta}, 400),
                    ("PUT", f"/{dev.device}/0/zz/1700000000.00000.data", {"X-Object-Metadata": meta}, 400),
                    ("PUT", f"/{dev.device}/0/{good}/1700000000.00000.data", {"X-Object-Metadata": "[1"}, 400),
                    ("PUT", f"/{dev.device}/0/{good}/1700000000.00000.data", {"X-Object-Metadata": meta}, 422),
                    ("PUT", f"/{dev.device}/0/{good}/1700000000.00000.meta", {"X-Object-Metadata": "{}"}, 409),
                ):
                    headers = {"X-Backend-Replication": "true", **headers}
                    async with http.request(method, base + path, data=b"x", headers=headers) as r:
                        assert r.status == want, (method, path, await r.text())
                async with http.get(f"{base}/{dev.device}/0", headers={"X-Backend-Replication": "true"}) as r:
                    assert r.status == 200, await r.text()
                    assert await r.json() == {}
            assert not list((node.settings.devices / dev.device).glob("objects/0/*/*"))

    asyncio.run(run())


@pytest.mark.unit
def test_expirer_rereads_only_the_suffixes_that_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write to a partition makes the next pass read the metadata of that write's suffix alone, not of every
    object of the partition; what it finds (a new X-Delete-At, an object gone) is right."""
    root = tmp_path / "sda"
    root.mkdir()
    names = {f"{i:029x}{sfx}": sfx for i, sfx in enumerate(("a01", "a02", "a03", "a04"))}

    def write(name_hash: str, ts: str, ext: str, meta: dict[str, str]) -> Path:
        directory = root / "objects" / "7" / names[name_hash] / name_hash
        writer = diskfile.Writer(root, directory, False)
        writer.write(b"x" if ext == "data" else b"")
        writer.commit(f"{ts}.{ext}", {"name": f"/{ACCOUNT}/c/{name_hash}", "x-timestamp": ts,
                                      "content-length": "1", **meta})
        return directory

    for n, name_hash in enumerate(names):
        write(name_hash, f"1700000000.0000{n}", "data", {"x-delete-at": "1700000100"} if n == 0 else {})
    reads: list[str] = []
    real = diskfile.read_meta

    def counting(path: Path) -> dict[str, object]:
        reads.append(path.parent.name)
        return real(path)

    monkeypatch.setattr(diskfile, "read_meta", counting)
    due = expirer.due_objects(root, 1700000200.0)
    assert [d[0] for d in due] == [f"/{ACCOUNT}/c/{next(iter(names))}"] and len(reads) == 4
    reads.clear()
    assert expirer.due_objects(root, 1700000200.0) == due and reads == []  # nothing changed: nothing read
    third = list(names)[2]
    write(third, "1700000001.00000", "meta", {"x-delete-at": "1700000150"})
    due = expirer.due_objects(root, 1700000200.0)
    assert sorted(d[0] for d in due) == sorted(f"/{ACCOUNT}/c/{h}" for h in list(names)[::2])
    assert set(reads) == {third}
    shutil.rmtree(root / "objects" / "7" / names[next(iter(names))])
    diskfile.note_change(root / "objects" / "7" / names[next(iter(names))] / next(iter(names)))
    assert [d[0] for d in expirer.due_objects(root, 1700000200.0)] == [f"/{ACCOUNT}/c/{third}"]
