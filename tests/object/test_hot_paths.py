"""The storage servers' fast paths keep their rules: container updates sent together (the container server's
batch answer, one transaction per container, a bad entry refused alone), suffix hashes kept between asks but
never stale after a write, a quarantine or a wiped partition, and many concurrent small PUTs all listed."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tinystack import config as config_mod
from tinystack.core.auth import RequestContext
from tinystack.object import local
from tinystack.object import settings as settings_mod
from tinystack.object.common import normalize_timestamp
from tinystack.object.proxy.app import build
from tinystack.object.servers import diskfile, hashes
from tinystack.object.servers.auditor import quarantine
from tinystack.object.servers.base import BackendPath, NodeContext
from tinystack.object.servers.container import ContainerServer
from tinystack.object.servers.containerdb import ContainerBroker
from tinystack.object.servers.listing import ListParams
from tinystack.object.servers.node import StorageNode
from tinystack.object.servers.object import INLINE_BODY, _HotDirs
from tinystack.object.servers.updates import BATCH_MARK

ACCOUNT = "AUTH_p1"


def _settings(tmp_path: Path, **extra: str) -> settings_mod.ObjectSettings:
    cfg = config_mod.load(None, environ={}, overrides={
        "state_dir": str(tmp_path), "object__part_power": "4", "object__account_port": "0",
        "object__container_port": "0", "object__object_port": "0", "object__updater_interval": "3600",
        "object__replicator_interval": "0", "object__auditor_interval": "0", "object__expirer_interval": "0",
        **{f"object__{k}": v for k, v in extra.items()}})
    return settings_mod.load(cfg)


def _ts(n: int) -> str:
    return normalize_timestamp(1_700_000_000 + n)


@pytest.mark.unit
def test_put_objects_applies_a_batch_newest_wins(tmp_path: Path) -> None:
    b = ContainerBroker(tmp_path / "c.db")
    b.initialize(ACCOUNT, "c", _ts(0))
    changed = b.put_objects([("a", _ts(2), 5, "text/plain", "e" * 32, False),
                             ("a", _ts(1), 7, "text/plain", "f" * 32, False),  # older than the one before
                             ("b", _ts(3), 4, "text/plain", "e" * 32, False),
                             ("b", _ts(4), 0, "", "", True)])
    assert changed == [True, False, True, True]
    assert [r["name"] for r in b.list_objects(ListParams(10))] == ["a"]
    s = b.stat()
    assert (s["object_count"], s["bytes_used"]) == (1, 5)


@pytest.mark.unit
def test_container_server_batch_answers_each_update(tmp_path: Path) -> None:
    async def run() -> None:
        s = _settings(tmp_path)
        (s.devices / "d1").mkdir(parents=True)
        server = ContainerServer(NodeContext(s))
        client = TestClient(TestServer(server.app()))
        await client.start_server()
        try:
            h = {"X-Timestamp": _ts(0)}
            assert (await client.put(f"/d1/3/{ACCOUNT}/c", headers=h)).status == 201
            put = {"X-Timestamp": _ts(1), "X-Size": "4", "X-Content-Type": "text/plain", "X-Etag": "e" * 32}
            updates = [
                {"device": "d1", "partition": "3", "op": "PUT", "account": ACCOUNT, "container": "c", "obj": "o1",
                 "headers": put},
                {"device": "d1", "partition": "3", "op": "PUT", "account": ACCOUNT, "container": "c", "obj": "o2",
                 "headers": {**put, "X-Size": "not a number"}},  # refused alone
                {"device": "d1", "partition": "3", "op": "DELETE", "account": ACCOUNT, "container": "c",
                 "obj": "o3", "headers": {"X-Timestamp": _ts(2)}},
                {"device": "d1", "partition": "3", "op": "PUT", "account": ACCOUNT, "container": "nope",
                 "obj": "o1", "headers": put},  # no such container
                {"device": "d9", "partition": "3", "op": "PUT", "account": ACCOUNT, "container": "c", "obj": "o1",
                 "headers": put},  # no such device
                {"device": "d1", "partition": "3", "op": "POST", "account": ACCOUNT, "container": "c", "obj": "o1",
                 "headers": put},  # not an update
            ]
            resp = await client.post("/", json=updates, headers={BATCH_MARK: "true"})
            assert resp.status == 200
            assert await resp.json() == [201, 400, 204, 404, 507, 400]
            listed = await client.get(f"/d1/3/{ACCOUNT}/c")
            assert [r["name"] for r in await listed.json()] == ["o1"]
            assert listed.headers["X-Container-Object-Count"] == "1"
            assert (await client.post("/", data=b"{not json", headers={BATCH_MARK: "true"})).status == 400
            assert (await client.post("/", json={"a": 1}, headers={BATCH_MARK: "true"})).status == 400
            assert (await client.post("/", json=[], headers={BATCH_MARK: "true"})).status == 200
        finally:
            await client.close()
            await server.close()

    asyncio.run(run())


@pytest.mark.unit
def test_a_container_whose_database_fails_fails_alone_in_a_batch(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(tmp_path)
    (s.devices / "d1").mkdir(parents=True)
    server = ContainerServer(NodeContext(s))
    for name in ("good", "bad"):
        server._broker(BackendPath("d1", 3, ACCOUNT, name)).initialize(ACCOUNT, name, _ts(0))
    bad = server._broker(BackendPath("d1", 3, ACCOUNT, "bad"))
    real = ContainerBroker.put_objects

    def failing(self: ContainerBroker, rows: list[tuple[str, str, int, str, str, bool]]) -> list[bool]:
        if self is bad:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return real(self, rows)

    monkeypatch.setattr(ContainerBroker, "put_objects", failing)
    put = {"X-Timestamp": _ts(1), "X-Size": "1", "X-Etag": "e" * 32}
    updates = [{"device": "d1", "partition": "3", "op": "PUT", "account": ACCOUNT, "container": name, "obj": "o",
                "headers": put} for name in ("good", "bad")]

    async def run() -> list[int]:
        try:
            return server.apply_updates(updates)
        finally:
            await server.close()

    assert asyncio.run(run()) == [201, 503]  # the bad one is left pending by its sender, the good one is in


def _commit(root: Path, directory: Path, name: str) -> None:
    writer = diskfile.Writer(root, directory, fsync=False)
    writer.write(b"body")
    writer.commit(name, {"x-timestamp": name.rpartition(".")[0], "etag": "x", "content-length": 4})


@pytest.mark.unit
def test_suffix_hashes_follow_writes_quarantines_and_wipes(tmp_path: Path) -> None:
    root = tmp_path / "d1"
    root.mkdir()
    one = diskfile.object_dir(root, 5, "0" * 29 + "abc")
    other = diskfile.object_dir(root, 5, "1" * 29 + "abc")
    _commit(root, one, f"{_ts(1)}.data")
    first = hashes.suffix_hashes(root, 5)
    assert set(first) == {"abc"}
    assert hashes.suffix_hashes(root, 5) == first  # kept
    _commit(root, one, f"{_ts(2)}.ts")  # a newer file in the same dirs
    second = hashes.suffix_hashes(root, 5)
    assert second["abc"] != first["abc"]
    _commit(root, other, f"{_ts(3)}.data")
    third = hashes.suffix_hashes(root, 5)
    assert third["abc"] != second["abc"]
    quarantine(root, other)
    assert hashes.suffix_hashes(root, 5) == second  # the quarantined object is gone from the hash
    shutil.rmtree(root / "objects")  # a wiped device, refilled with an older object only
    assert hashes.suffix_hashes(root, 5) == {}
    (root / "objects" / "5" / "abc" / one.name).mkdir(parents=True)
    (root / "objects" / "5" / "abc" / one.name / f"{_ts(1)}.data").write_bytes(b"body")
    assert hashes.suffix_hashes(root, 5) == first


@pytest.mark.api
def test_concurrent_small_puts_are_all_listed(tmp_path: Path) -> None:
    """Many PUTs at once (their container updates go in batches) and then their DELETEs: every one listed,
    counted, then gone."""
    async def run() -> None:
        s = _settings(tmp_path)
        node = StorageNode(s)
        await node.start()

        def validator(token: str) -> RequestContext:
            return RequestContext(user_id="u1", project_id="p1", roles=("member",), token=token)

        client = TestClient(TestServer(build(s, validator).build()))
        await client.start_server()
        try:
            h = {"X-Auth-Token": "t"}
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=h)).status == 201
            names = [f"o{i:03d}" for i in range(24)]
            puts = await asyncio.gather(*(client.put(f"/v1/{ACCOUNT}/c/{n}", data=n.encode(), headers=h)
                                          for n in names))
            assert [r.status for r in puts] == [201] * len(names)
            listed = await client.get(f"/v1/{ACCOUNT}/c?format=json", headers=h)
            assert [r["name"] for r in await listed.json()] == names
            assert listed.headers["X-Container-Object-Count"] == str(len(names))
            assert listed.headers["X-Container-Bytes-Used"] == str(4 * len(names))
            got = await client.get(f"/v1/{ACCOUNT}/c/o007", headers=h)
            assert got.status == 200 and await got.read() == b"o007"
            dels = await asyncio.gather(*(client.delete(f"/v1/{ACCOUNT}/c/{n}", headers=h) for n in names))
            assert [r.status for r in dels] == [204] * len(names)
            listed = await client.get(f"/v1/{ACCOUNT}/c?format=json", headers=h)
            assert await listed.json() == [] and listed.headers["X-Container-Object-Count"] == "0"
        finally:
            await client.close()
            await node.stop()

    asyncio.run(run())


_FIRST_START = """
import asyncio, json, sys
from pathlib import Path
from tests.object.test_hot_paths import _settings
from tinystack.object.proxy.app import build
from tinystack.object.servers.node import StorageNode

async def main() -> None:
    node = StorageNode(_settings(Path(sys.argv[1])))
    await node.start()
    build(node.settings, None)
    try:
        print(json.dumps({"rings": sorted(node.node.rings), "numpy": "numpy" in sys.modules,
                          "builder": "tinystack.object.ring.builder" in sys.modules}))
    finally:
        await node.stop()

asyncio.run(main())
"""


def test_first_start_builds_rings_without_loading_the_builder_here(tmp_path: Path) -> None:
    """The rings of a first start are built in a child process: numpy and the builder (some 13 MB) never enter
    the long-lived process, which only reads rings."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", _FIRST_START, str(tmp_path)], capture_output=True, text=True,
                         cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["numpy"] is False and seen["builder"] is False
    assert {"account", "container", "object"} <= set(seen["rings"])
    assert all(list(tmp_path.rglob(f"{kind}.ring")) for kind in seen["rings"])  # written by the child


def test_object_requests_look_at_the_device_off_the_event_loop(tmp_path: Path) -> None:
    """No per-request look at the device on the event loop: GET and HEAD look only when they find nothing (a
    found object proves it is there), PUT and DELETE in their write's thread trip; a device taken away still
    answers 507 (a miss on one that is there 404)."""
    async def run() -> None:
        node = StorageNode(_settings(tmp_path))
        await node.start()
        dev = node.node.rings["object"].devs[0]
        base = f"http://{dev.ip}:{dev.port}/{dev.device}/0/{ACCOUNT}/c"
        calls: list[str] = []
        real = node.node.device_root

        def counting(device: str) -> Path:
            calls.append(device)
            return real(device)

        node.node.device_root = counting  # type: ignore[method-assign]
        try:
            async with aiohttp.ClientSession() as http:
                put = {"X-Timestamp": _ts(1), "Content-Type": "text/plain", "Content-Length": "2"}
                async with http.put(f"{base}/o", data=b"hi", headers=put) as r:
                    assert r.status == 201
                assert calls == []  # the write looked in its thread
                gone = f"http://{dev.ip}:{dev.port}/gone/0/{ACCOUNT}/c/o"
                async with http.put(gone, data=b"hi", headers={**put, "X-Timestamp": _ts(2)}) as r:
                    assert r.status == 507
                async with http.delete(gone, headers={"X-Timestamp": _ts(2)}) as r:
                    assert r.status == 507
                assert not (tmp_path / "devs" / "gone").exists() and not list(tmp_path.rglob("gone"))
                for method in ("GET", "HEAD"):
                    async with http.request(method, f"{base}/o") as r:
                        assert r.status == 200 and r.headers["Content-Length"] == "2"
                    async with http.request(method, f"{base}/missing") as r:
                        assert r.status == 404
                    async with http.request(method, gone) as r:
                        assert r.status == 507
                    async with http.request(method, f"http://{dev.ip}:{dev.port}/.x/0/{ACCOUNT}/c/o") as r:
                        assert r.status == 400
                assert calls == []
        finally:
            await node.stop()

    asyncio.run(run())


def test_hot_small_object_reads_take_no_thread_trip(tmp_path: Path) -> None:
    """A GET/HEAD of a small object the server just wrote or read is answered on the event loop from the kernel's
    caches, with the same answer a thread gives; a cold object, a newer write, a file gone behind the server's back
    and a body over INLINE_BODY still come right (through a thread where needed)."""
    async def run() -> None:
        node = StorageNode(_settings(tmp_path))
        await node.start()
        dev = node.node.rings["object"].devs[0]
        base = f"http://{dev.ip}:{dev.port}/{dev.device}/0/{ACCOUNT}/c"
        trips: list[str] = []
        real = node.node.run

        async def counting(fn: Any, *args: Any) -> Any:
            trips.append(getattr(fn, "__name__", ""))
            return await real(fn, *args)

        node.node.run = counting  # type: ignore[method-assign]

        def put_headers(n: int, body: bytes) -> dict[str, str]:
            return {"X-Timestamp": _ts(n), "Content-Type": "text/plain", "Content-Length": str(len(body))}

        try:
            async with aiohttp.ClientSession() as http:
                async with http.put(f"{base}/o", data=b"hello", headers=put_headers(1, b"hello")) as r:
                    assert r.status == 201
                trips.clear()
                async with http.get(f"{base}/o") as r:
                    assert (r.status, await r.read(), r.headers["Content-Length"]) == (200, b"hello", "5")
                    assert r.headers["X-Timestamp"] == _ts(1)
                async with http.head(f"{base}/o") as r:
                    assert (r.status, r.headers["Content-Length"]) == (200, "5")
                assert trips == []
                async with http.put(f"{base}/o", data=b"newer!", headers=put_headers(2, b"newer!")) as r:
                    assert r.status == 201
                async with http.get(f"{base}/o") as r:
                    assert (r.status, await r.read()) == (200, b"newer!")
                node.object._hot = _HotDirs()  # forgotten: the next read goes to a thread, then it is hot again
                trips.clear()
                for _ in range(2):
                    async with http.get(f"{base}/o") as r:
                        assert (r.status, await r.read()) == (200, b"newer!")
                assert trips == ["_load"]
                for path in tmp_path.rglob("*.data"):
                    path.unlink()  # gone behind the server's back
                async with http.get(f"{base}/o") as r:
                    assert r.status == 404
                big = bytes(range(256)) * (INLINE_BODY // 256 + 1)
                async with http.put(f"{base}/big", data=big, headers=put_headers(3, big)) as r:
                    assert r.status == 201
                trips.clear()
                async with http.get(f"{base}/big") as r:
                    assert (r.status, await r.read()) == (200, big)
                assert trips == ["_load"]
        finally:
            await node.stop()

    asyncio.run(run())


@pytest.mark.unit
def test_read_cached_reads_only_what_the_page_cache_holds(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 5000)
    if getattr(os, "RWF_NOWAIT", None) is None:
        assert diskfile.read_cached(path, 5000) is None
        return
    assert diskfile.read_cached(path, 5000) in (b"x" * 5000, None)  # None only where the file system cannot
    assert diskfile.read_cached(path, 6000) is None  # shorter than its metadata says: not what was asked for
    assert diskfile.read_cached(path, 0) == b""
    with pytest.raises(FileNotFoundError):
        diskfile.read_cached(tmp_path / "gone", 1)


def test_object_updates_reach_a_container_server_of_this_process_without_http(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An object server hands its container updates to the container server of its own process directly (no
    HTTP request, the same statuses); when that fails, the update is left as an async pending, as over HTTP."""
    sessions: list[str] = []
    real_http = NodeContext.http

    def counting_http(self: NodeContext) -> aiohttp.ClientSession:
        sessions.append("http")
        return real_http(self)

    monkeypatch.setattr(NodeContext, "http", counting_http)

    async def run() -> None:
        node = StorageNode(_settings(tmp_path, account_update_delay="3600"))
        await node.start()
        dev = node.node.rings["object"].devs[0]
        cpart, cnodes = node.node.rings["container"].get_nodes(ACCOUNT, "c")
        c = cnodes[0]
        container = f"http://{c.ip}:{c.port}/{c.device}/{cpart}/{ACCOUNT}/c"
        part = node.node.rings["object"].get_part(ACCOUNT, "c", "o")
        to_container = {"X-Container-Host": f"{c.ip}:{c.port}", "X-Container-Device": c.device,
                        "X-Container-Partition": str(cpart), "Content-Type": "text/plain"}
        try:
            async with aiohttp.ClientSession() as http:
                async with http.put(container, headers={"X-Timestamp": _ts(0)}) as r:
                    assert r.status == 201
                sessions.clear()
                for n, name in enumerate(("o", "p")):
                    async with http.put(f"http://{dev.ip}:{dev.port}/{dev.device}/{part}/{ACCOUNT}/c/{name}",
                                        data=b"hi", headers={**to_container, "X-Timestamp": _ts(1 + n)}) as r:
                        assert r.status == 201
                async with http.get(container) as r:
                    assert [row["name"] for row in await r.json()] == ["o", "p"]
                assert sessions == []

                def failing(_updates: list[dict[str, Any]]) -> list[int]:
                    raise sqlite3.OperationalError("disk I/O error")

                local.serve_updates(c.ip, c.port, failing)
                async with http.put(f"http://{dev.ip}:{dev.port}/{dev.device}/{part}/{ACCOUNT}/c/q", data=b"hi",
                                    headers={**to_container, "X-Timestamp": _ts(3)}) as r:
                    assert r.status == 201
                pending = list(tmp_path.rglob("async_pending/*/*"))
                assert len(pending) == 1 and json.loads(pending[0].read_text())["obj"] == "q"
        finally:
            await node.stop()

    asyncio.run(run())
