"""The chunked backup driver and the backup agent over an in-memory object store: holes take no object, an
incremental backup stores only the chunks that changed, restores give back the bytes (zeroing what a hole
covers), a corrupt object is refused, an interrupted backup is finished by the retry and a delete leaves
nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import until
from tinystack.core.bus import InProcessBus
from tinystack.volume.backup_agent import BackupAgent
from tinystack.volume.drivers.backup_chunked import ChunkedBackupDriver, metadata_name
from tinystack.volume.drivers.base import DriverError

pytestmark = pytest.mark.unit

MiB = 1024**2


class MemorySwift:
    """Object storage in a dict, with the calls the driver makes; ``fail_put`` fails the n-th next PUT."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.fail_put: int | None = None
        self.puts = 0
        self.hold: asyncio.Event | None = None  # set: PUTs wait for it (an agent stopped in the middle)

    async def close(self) -> None:
        return None

    async def ensure_container(self, container: str) -> None:
        return None

    async def put(self, container: str, name: str, body: bytes | AsyncIterator[bytes],
                  headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else b"".join([p async for p in body])
        self.puts += 1
        if self.hold is not None and self.puts > 1:
            await self.hold.wait()
        if self.fail_put is not None:
            self.fail_put -= 1
            if self.fail_put == 0:
                self.fail_put = None
                raise DriverError("object storage unreachable: connection reset")
        self.objects[(container, name)] = data

    async def get(self, container: str, name: str) -> AsyncIterator[bytes]:
        data = self.objects.get((container, name))
        if data is None:
            raise DriverError(f"backup object {container}/{name} not found", permanent=True)
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]

    async def get_json(self, container: str, name: str) -> dict[str, Any] | None:
        data = self.objects.get((container, name))
        return None if data is None else dict(json.loads(data))

    async def delete(self, container: str, name: str) -> None:
        self.objects.pop((container, name), None)

    async def names(self, container: str, prefix: str) -> list[str]:
        return sorted(n for c, n in self.objects if c == container and n.startswith(prefix))


def sparse(path: Path, size: int, writes: dict[int, bytes]) -> None:
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in writes.items():
            f.seek(offset)
            f.write(data)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def driver() -> tuple[ChunkedBackupDriver, MemorySwift]:
    swift = MemorySwift()
    return ChunkedBackupDriver(swift, chunk_size=MiB), swift  # type: ignore[arg-type]


def test_full_and_incremental_backup_and_restore(tmp_path: Path) -> None:
    d, swift = driver()
    vol = tmp_path / "volume-a"
    sparse(vol, 8 * MiB, {100: b"alpha" * 300, 5 * MiB + 3: os.urandom(300_000), 7 * MiB: os.urandom(MiB)})

    async def scenario() -> None:
        full = await d.backup(vol, "c", "p1", {"backup_id": "b1"})
        assert [e.get("zero", False) for e in full["objects"]] == [False, True, True, True, True, False, True, False]
        # Random data is stored as it is: compressing it would cost more than it saves.
        assert [e.get("compression") for e in full["objects"] if "name" in e] == ["zlib", "zlib", None]
        assert sorted(n for _, n in swift.objects) == ["p1-00001", "p1-00006", "p1-00008", "p1_metadata"]
        before = sha(vol)
        with open(vol, "r+b") as f:  # one chunk changes; the rest stays
            f.seek(5 * MiB + 10)
            f.write(b"changed")
        after = sha(vol)
        inc = await d.backup(vol, "c", "p2", {"backup_id": "b2"}, parent=full)
        assert sorted(n for _, n in swift.objects if n.startswith("p2")) == ["p2-00006", "p2_metadata"]
        assert inc["objects"][0]["name"] == "p1-00001"  # unchanged: the parent's object serves
        target = tmp_path / "volume-b"
        sparse(target, 8 * MiB, {2 * MiB: b"garbage in what the backup has as a hole"})
        await d.restore("c", "p1", target)
        assert sha(target) == before
        await d.restore("c", "p2", target)
        assert sha(target) == after
        small = tmp_path / "volume-small"
        sparse(small, 4 * MiB, {})
        with pytest.raises(DriverError, match="too small"):
            await d.restore("c", "p1", small)
        swift.objects[("c", "p2-00006")] = swift.objects[("c", "p1-00006")]  # the wrong bytes under its name
        with pytest.raises(DriverError, match="sha256"):
            await d.restore("c", "p2", target)
        assert await d.delete("c", "p2") == 2
        assert sorted(n for _, n in swift.objects) == ["p1-00001", "p1-00006", "p1-00008", "p1_metadata"]
        await d.delete("c", "p1")
        assert swift.objects == {}

    asyncio.run(scenario())


def test_agent_finishes_an_interrupted_backup_restores_and_deletes(tmp_path: Path) -> None:
    d, swift = driver()
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    sparse(volumes / "volume-v1", 4 * MiB, {0: b"x" * MiB, 3 * MiB: b"y" * 10})

    async def scenario() -> list[dict[str, Any]]:
        bus = InProcessBus()
        reports: list[dict[str, Any]] = []

        async def collect(msg: dict[str, Any]) -> None:
            reports.append(msg)

        bus.subscribe("status.backup", collect)
        agent = BackupAgent(bus, "h1", d, volumes, tmp_path / "records", poll_interval=0.05)
        await agent.start()
        swift.fail_put = 2  # the second chunk's upload fails once: the retry does the backup again
        spec = {"container": "c", "prefix": "pfx", "mode": "backup", "volume_id": "v1", "snapshot_id": None,
                "parent": None, "restore": None}
        await bus.publish(agent.topic, {"op": "put", "type": "backup", "id": "b1", "generation": 1, "spec": spec})
        await until(lambda: any(r["status"].get("state") == "ready" for r in reports), 20, "the backup ready")
        assert reports[-1]["status"]["object_count"] == 3
        assert ("c", metadata_name("pfx")) in swift.objects
        # Restore into a volume that appears later (the volume agent makes it).
        restore = {"seq": 1, "volume_id": "v2"}
        await bus.publish(agent.topic, {"op": "put", "type": "backup", "id": "b1", "generation": 2,
                                        "spec": {**spec, "restore": restore}})
        await asyncio.sleep(0.1)
        sparse(volumes / "volume-v2", 4 * MiB, {})
        await until(lambda: reports[-1]["status"].get("restore_seq") == 1, 20, "the restore done")
        assert sha(volumes / "volume-v2") == sha(volumes / "volume-v1")
        await bus.publish(agent.topic, {"op": "delete", "type": "backup", "id": "b1", "generation": 3,
                                        "spec": {"container": "c", "prefix": "pfx"}})
        await until(lambda: reports[-1]["status"].get("state") == "deleted", 20, "the backup deleted")
        await agent.stop(cleanup=True)
        await bus.close()
        return reports

    asyncio.run(scenario())
    assert swift.objects == {}


def test_a_backup_cut_short_by_a_restart_is_done_by_the_next_agent(tmp_path: Path) -> None:
    d, swift = driver()
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    sparse(volumes / "volume-v1", 4 * MiB, {0: b"a" * 10, MiB: b"b" * 10, 2 * MiB: b"c" * 10})
    spec = {"container": "c", "prefix": "pfx", "mode": "backup", "volume_id": "v1", "snapshot_id": None,
            "parent": None, "restore": None}

    async def scenario() -> list[dict[str, Any]]:
        bus = InProcessBus()
        reports: list[dict[str, Any]] = []

        async def collect(msg: dict[str, Any]) -> None:
            reports.append(msg)

        async def resync(msg: dict[str, Any]) -> None:  # what the controller answers a starting agent
            await bus.publish(f"agent.backup.{msg['host']}", {"op": "put", "type": "backup", "id": "b1",
                                                              "generation": 1, "spec": spec})

        bus.subscribe("status.backup", collect)
        bus.subscribe("resync.backup", resync)
        swift.hold = asyncio.Event()
        first = BackupAgent(bus, "h1", d, volumes, tmp_path / "records")
        await first.start()
        await until(lambda: swift.puts >= 2, 10, "the second chunk on its way")
        await first.stop(cleanup=False)  # the agent dies with one chunk stored and no metadata
        assert ("c", metadata_name("pfx")) not in swift.objects and reports == []
        swift.hold = None
        second = BackupAgent(bus, "h1", d, volumes, tmp_path / "records")
        await second.start()
        await until(lambda: reports and reports[-1]["status"].get("state") == "ready", 20, "the backup ready")
        await second.stop(cleanup=False)
        await bus.close()
        return reports

    reports = asyncio.run(scenario())
    assert reports[-1]["status"]["object_count"] == 4
    assert sorted(n for _, n in swift.objects) == ["pfx-00001", "pfx-00002", "pfx-00003", "pfx_metadata"]
