"""Reclaim and the cheap idle pass: tombstones past ``reclaim_age`` go while suffixes are hashed (also from a suffix
hashed long ago and unchanged since), a pushed tombstone past it is not taken over nothing; deleted database rows
and long-deleted empty databases go during database replication; a peer device answers every partition's digest
in one request, so a pass over replicas in sync compares no partition suffix by suffix; a database's sync hash is
computed once until the database changes; the expirer reads the metadata of changed partitions only."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import aiohttp
import pytest

from tests.object.test_background import H, cluster, copies, primaries
from tests.object.test_replicas import ACCOUNT
from tinystack.object.common import normalize_timestamp
from tinystack.object.servers import auditor, dbreplicator, diskfile, expirer, hashes
from tinystack.object.servers.containerdb import ContainerBroker
from tinystack.object.servers.dbreplicator import SyncHashes, reclaim, reclaimable
from tinystack.object.servers.expirer import expire_once
from tinystack.object.servers.replication import MARK


def _commit(root: Path, directory: Path, name: str) -> None:
    writer = diskfile.Writer(root, directory, fsync=False)
    writer.commit(name, {"x-timestamp": name.rpartition(".")[0]})


@pytest.mark.unit
def test_tombstones_past_reclaim_age_go_while_hashing(tmp_path: Path) -> None:
    root = tmp_path / "d1"
    root.mkdir()
    now = time.time()
    old = diskfile.object_dir(root, 3, "0" * 29 + "abc")
    young = diskfile.object_dir(root, 3, "1" * 29 + "abc")
    other = diskfile.object_dir(root, 3, "2" * 29 + "def")
    _commit(root, old, f"{normalize_timestamp(now - 1000)}.ts")
    _commit(root, young, f"{normalize_timestamp(now - 10)}.ts")
    _commit(root, other, f"{normalize_timestamp(now - 500)}.ts")
    kept = hashes.suffix_hashes(root, 3, reclaim_age=2000)
    assert set(kept) == {"abc", "def"} and old.exists()
    # Nothing changed on disk since: the suffixes are only rehashed because their tombstones fell due.
    after = hashes.suffix_hashes(root, 3, reclaim_age=100)
    assert not old.exists() and not other.exists() and young.exists()
    assert set(after) == {"abc"} and after["abc"] != kept["abc"]
    listed = hashes.suffix_listing(root, 3, ["abc", "def"], reclaim_age=100)
    assert listed == {young.name: [f"{normalize_timestamp(now - 10)}.ts"]}
    # A .data is never reclaimed, however old.
    data = diskfile.object_dir(root, 3, "3" * 29 + "abc")
    writer = diskfile.Writer(root, data, fsync=False)
    writer.write(b"x")
    writer.commit(f"{normalize_timestamp(now - 5000)}.data", {"etag": "x", "content-length": 1})
    assert "abc" in hashes.suffix_hashes(root, 3, reclaim_age=1) and list(data.glob("*.data"))
    assert hashes.suffix_listing(root, 3, ["abc"], reclaim_age=1) == {data.name: [f"{normalize_timestamp(now - 5000)}.data"]}
    assert not young.exists()  # the listing reclaimed it as well
    assert hashes.suffix_hashes(root, 3, reclaim_age=1) == hashes.suffix_hashes(root, 3)


@pytest.mark.unit
def test_partition_digests_follow_suffix_hashes(tmp_path: Path) -> None:
    root = tmp_path / "d1"
    root.mkdir()
    _commit(root, diskfile.object_dir(root, 1, "0" * 29 + "abc"), f"{normalize_timestamp(time.time())}.ts")
    _commit(root, diskfile.object_dir(root, 2, "0" * 29 + "fed"), f"{normalize_timestamp(time.time())}.ts")
    digests = hashes.device_digests(root)
    assert digests == {p: hashes.digest(hashes.suffix_hashes(root, p)) for p in (1, 2)}
    assert digests[1] != digests[2] and hashes.digest({}) not in digests.values()
    _commit(root, diskfile.object_dir(root, 2, "1" * 29 + "fed"), f"{normalize_timestamp(time.time())}.ts")
    again = hashes.device_digests(root)
    assert again[1] == digests[1] and again[2] != digests[2]


@pytest.mark.unit
def test_deleted_rows_and_databases_reclaimed(tmp_path: Path) -> None:
    broker = ContainerBroker(tmp_path / "c.db")
    now = time.time()
    broker.initialize("AUTH_x", "c", normalize_timestamp(now - 5000))
    broker.put_objects([("live", normalize_timestamp(now - 4000), 3, "t", "e", False),
                        ("gone-long-ago", normalize_timestamp(now - 3000), 0, "t", "e", True),
                        ("gone-lately", normalize_timestamp(now - 10), 0, "t", "e", True)])
    before = normalize_timestamp(now - 1000)
    assert reclaim(broker, "container", before) == 1
    names = [r[0] for r in broker.conn.execute("SELECT name FROM object ORDER BY name")]
    assert names == ["gone-lately", "live"] and broker.stat()["object_count"] == 1
    assert not reclaimable(broker, before)  # not deleted
    broker.delete(normalize_timestamp(now - 2000))
    assert not reclaimable(broker, before)  # deleted, but it still lists an object
    broker.put_object("live", normalize_timestamp(now - 1500), 0, "t", "e", True)
    assert reclaimable(broker, before) and not reclaimable(broker, normalize_timestamp(now - 2500))
    broker.close()


@pytest.mark.unit
def test_sync_hash_kept_until_the_database_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    computed: list[Path] = []
    real = dbreplicator._fresh_hash

    def counting(factory: type, path: Path) -> str:
        computed.append(path)
        return real(factory, path)

    monkeypatch.setattr(dbreplicator, "_fresh_hash", counting)

    class Node:
        async def run(self, fn, *args):  # type: ignore[no-untyped-def]
            return await asyncio.to_thread(fn, *args)

    broker = ContainerBroker(tmp_path / "c.db")
    broker.initialize("AUTH_x", "c", normalize_timestamp(1))
    kept = SyncHashes(Node())  # type: ignore[arg-type]

    async def run() -> None:
        first = await kept.get(broker)
        assert first == broker.sync_hash() and await kept.get(broker) == first and len(computed) == 1
        broker.put_object("o", normalize_timestamp(2), 1, "t", "e", False)
        second = await kept.get(broker)
        assert second != first and second == broker.sync_hash() and len(computed) == 2
        other = ContainerBroker(broker.path)  # another connection's write is seen too
        other.put_object("p", normalize_timestamp(3), 1, "t", "e", False)
        other.close()
        assert await kept.get(broker) == broker.sync_hash() != second and len(computed) == 3

    asyncio.run(run())
    broker.close()


def test_pass_in_sync_compares_nothing_and_old_tombstones_go(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            for i in range(20):
                assert (await client.put(f"/v1/{ACCOUNT}/c/o{i}", data=b"x", headers=H)).status == 201
            await node.run_once("replicator")
            stats = await node.run_once("replicator")
            assert stats.partitions > 0 and stats.compared == 0 and stats.pushed == 0 and stats.failures == 0

            # One request answers every partition of a device.
            dev = node.node.rings["object"].devs[0]
            root = node.settings.devices / dev.device
            async with aiohttp.ClientSession() as http, http.get(f"http://{dev.ip}:{dev.port}/{dev.device}",
                                                               headers={MARK: "true"}) as r:
                assert r.status == 200
                assert await r.json() == {str(p): d for p, d in hashes.device_digests(root).items()}

            # A deleted object's tombstones, once older than reclaim_age, leave no file behind on any device.
            assert (await client.delete(f"/v1/{ACCOUNT}/c/o0", headers=H)).status == 204
            home = primaries(node, "o0")
            part = node.node.rings["object"].get_part(ACCOUNT, "c", "o0")
            tombs = [p for d in home for p in (node.settings.devices / d / "objects" / str(part)).glob("*/*/*.ts")]
            assert len(tombs) == 3
            await node.run_once("replicator")
            assert all(t.exists() for t in tombs)  # younger than a week
            object.__setattr__(node.settings, "reclaim_age", 0.001)
            await asyncio.sleep(0.01)
            await node.run_once("replicator")
            assert not any(t.exists() for t in tombs) and not any(t.parent.exists() for t in tombs)
            assert copies(node, "o1") and (await client.get(f"/v1/{ACCOUNT}/c/o1", headers=H)).status == 200
            again = await node.run_once("replicator")
            assert again.pushed == 0 and again.failures == 0

    asyncio.run(run())


def test_old_tombstone_push_refused_over_nothing_taken_over_data(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, _client):
            object.__setattr__(node.settings, "reclaim_age", 100.0)
            dev = node.node.rings["object"].devs[0]
            base = f"http://{dev.ip}:{dev.port}/{dev.device}/0"
            name_hash = "0123456789abcdef0123456789abcdef"
            old = normalize_timestamp(time.time() - 1000)
            older = normalize_timestamp(time.time() - 2000)
            meta = json.dumps({"x-timestamp": old})
            directory = node.settings.devices / dev.device / "objects" / "0" / name_hash[-3:] / name_hash
            async with aiohttp.ClientSession() as http:
                async with http.put(f"{base}/{name_hash}/{old}.ts", data=b"",
                                    headers={MARK: "true", "X-Object-Metadata": meta}) as r:
                    assert r.status == 409
                assert not directory.exists()
                data_meta = json.dumps({"etag": "9dd4e461268c8034f5c8564e155c67a6", "content-length": 1})
                async with http.put(f"{base}/{name_hash}/{older}.data", data=b"x",
                                    headers={MARK: "true", "X-Object-Metadata": data_meta}) as r:
                    assert r.status == 201
                async with http.put(f"{base}/{name_hash}/{old}.ts", data=b"",
                                    headers={MARK: "true", "X-Object-Metadata": meta}) as r:
                    assert r.status == 201  # it deletes an older copy: taken, then reclaimed here
                assert sorted(p.name for p in directory.iterdir() if not p.name.endswith(".json")) == [f"{old}.ts"]

    asyncio.run(run())


def test_db_replication_reclaims_rows_and_deleted_databases(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/a", data=b"x", headers=H)).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/b", data=b"x", headers=H)).status == 201
            assert (await client.delete(f"/v1/{ACCOUNT}/c/a", headers=H)).status == 204
            await node.container.flush()
            dbs = list(node.settings.devices.glob("*/containers/*/*/*/*.db"))
            assert len(dbs) == 3
            first = await node.run_once("container-replicator")
            assert first.reclaimed_rows == 0 and first.failures == 0
            object.__setattr__(node.settings, "reclaim_age", 0.001)
            for replicator in node.db_replicators.values():
                replicator._reclaimed.clear()
            await asyncio.sleep(0.01)
            stats = await node.run_once("container-replicator")
            assert stats.reclaimed_rows == 3 and stats.failures == 0  # the row of "a" on each replica
            for db in dbs:
                broker = node.container.brokers.get(db)
                assert [r[0] for r in broker.conn.execute("SELECT name FROM object")] == ["b"]
            listed = await client.get(f"/v1/{ACCOUNT}/c", headers=H)
            assert (await listed.text()).split() == ["b"]

            assert (await client.delete(f"/v1/{ACCOUNT}/c/b", headers=H)).status == 204
            await node.container.flush()
            assert (await client.delete(f"/v1/{ACCOUNT}/c", headers=H)).status == 204
            await asyncio.sleep(0.01)
            for replicator in node.db_replicators.values():
                replicator._reclaimed.clear()
            stats = await node.run_once("container-replicator")
            assert stats.reclaimed_databases >= 1
            for _ in range(3):  # a replica not yet reclaimed may push it back once; it goes again
                for replicator in node.db_replicators.values():
                    replicator._reclaimed.clear()
                await node.run_once("container-replicator")
            assert not list(node.settings.devices.glob("*/containers/*/*/*/*.db"))

    asyncio.run(run())


def test_expirer_rereads_only_changed_partitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/later", data=b"x", headers=H)).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/kept", data=b"y", headers=H)).status == 201
            soon = int(time.time()) + 100
            assert (await node.run_once("expirer")).expired == 0  # every partition read and kept
            read: list[int] = []
            real = expirer._expiring

            def counting(directories: list[Path]) -> list[expirer.Expiring]:
                read.append(len(directories))
                return real(directories)

            monkeypatch.setattr(expirer, "_expiring", counting)
            assert (await expire_once(node.node, node.ports["object"], now=soon + 1)).expired == 0
            assert read == []  # nothing changed: no metadata read
            # A POST gives "later" an X-Delete-At: its partition is read again and the object expires.
            resp = await client.post(f"/v1/{ACCOUNT}/c/later", headers={**H, "X-Delete-At": str(soon)})
            assert resp.status == 202
            done = await expire_once(node.node, node.ports["object"], now=soon + 1)
            assert done.expired >= 1 and done.failures == 0 and read
            assert copies(node, "later") == {} and len(copies(node, "kept")) == 3

    asyncio.run(run())


def test_auditor_reads_at_its_rate_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=H)).status == 201
            for name in ("a", "b", "c"):
                assert (await client.put(f"/v1/{ACCOUNT}/c/{name}", data=b"x", headers=H)).status == 201
            object.__setattr__(node.settings, "auditor_files_per_second", 2.0)
            batches: list[int] = []
            paces: set[int] = set()
            real = auditor.audit_dirs

            def counting(root: Path, directories: list[Path], stats: auditor.AuditStats,
                         pace: auditor.ByteRate | None = None) -> None:
                batches.append(len(directories))
                assert pace is not None and pace.rate == node.settings.auditor_bytes_per_second
                paces.add(id(pace))
                real(root, directories, stats, pace)

            monkeypatch.setattr(auditor, "audit_dirs", counting)
            stats = await node.run_once("auditor")
            assert stats.checked == 9 and stats.quarantined == 0
            assert sum(batches) == 9 and max(batches) == 2
            assert len(paces) == 1  # one byte budget for the whole pass, across devices and batches

    asyncio.run(run())


class _Clock:
    """A stopped clock for ``auditor.ByteRate``: records the pauses it asks for instead of sleeping."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        return False


def test_auditor_byte_rate_paces_reads_and_banks_at_most_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(auditor.time, "monotonic", clock.monotonic)
    pace = auditor.ByteRate(1_000_000)
    monkeypatch.setattr(pace.stop, "wait", clock.wait)
    for _ in range(3):
        pace.took(500_000)
    assert clock.waits == [0.5, 1.0, 1.5]  # the reads so far at 1 MB/s
    clock.now += 60.0  # a minute of small files (or none): only one second of allowance is kept
    pace.took(1_000_000)
    pace.took(1_000_000)
    assert clock.waits[3:] == [1.0]
    unlimited = auditor.ByteRate(0)
    monkeypatch.setattr(unlimited.stop, "wait", clock.wait)
    unlimited.took(10**9)
    assert len(clock.waits) == 4


def test_auditor_byte_rate_reads_a_large_object_in_chunks_and_stops(tmp_path: Path) -> None:
    root = tmp_path / "d1"
    root.mkdir()
    directory = diskfile.object_dir(root, 0, "0" * 32)
    body = b"y" * (3 * auditor.CHUNK + 5)
    writer = diskfile.Writer(root, directory, fsync=False)
    writer.write(body)
    writer.commit(f"{normalize_timestamp(time.time())}.data",
                  {"etag": hashlib.md5(body, usedforsecurity=False).hexdigest(), "content-length": str(len(body)),
                   "name": "/a/c/o"})
    data = diskfile.scan(directory).data
    assert data is not None
    sizes: list[int] = []
    assert auditor._valid(data, sizes.append) == (True, len(body))
    assert sizes == [auditor.CHUNK] * 3 + [5]
    # A pass called off (the node stopping) ends at the next pause instead of reading the rest.
    pace = auditor.ByteRate(1.0)
    pace.stop.set()
    with pytest.raises(auditor.Stopped):
        auditor._valid(data, pace.took)
