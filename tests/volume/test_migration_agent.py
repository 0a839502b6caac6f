"""The volume agent's side of a migration between two backends of one node, on real files: the copy is made
under a ``.part-`` name and published whole, the old file goes only once the document retires it, a restart
mid-copy leaves nothing behind and finishes, a failed copy is reported, and a sync never takes the copy in
progress for garbage. Also the ``enabled_backends`` settings, and the doctor looking in every backend."""

from __future__ import annotations

import asyncio
import copy
import os
from pathlib import Path
from typing import Any

from tests.volume.files import read_at, write_at
from tinystack.core.bus import InProcessBus
from tinystack.volume.agent import VolumeAgent
from tinystack.volume.drivers.base import GiB, VolumeDriver
from tinystack.volume.drivers.fake import FakeVolumeDriver
from tinystack.volume.drivers.file import FileDriver

HOST = "vol-mig"
VOL = "0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0b11"
NEW = "7d1e4f2a-1111-4c39-9d5e-5d0c3e1f0b12"
MiB = 1024**2


async def _no_auth() -> tuple[str, str]:
    raise AssertionError("no image API here")


class Node:
    """An agent with backends ``file`` (the root) and ``file2`` (a directory in it), and what it reports."""

    def __init__(self, tmp: Path, fake: bool = False) -> None:
        self.tmp, self.fake = tmp, fake
        self.bus = InProcessBus()
        self.reports: list[dict[str, Any]] = []
        self.drivers: dict[str, VolumeDriver] = (
            {"file": FakeVolumeDriver(), "file2": FakeVolumeDriver()} if fake else
            {"file": FileDriver(tmp / "volumes", _no_auth, HOST),
             "file2": FileDriver(tmp / "volumes" / "file2", _no_auth, HOST)})

        async def collect(msg: dict[str, Any]) -> None:
            self.reports.append(msg)

        self.bus.subscribe("status.volume", collect)
        self.agent = self.new_agent()

    def new_agent(self) -> VolumeAgent:
        return VolumeAgent(self.bus, HOST, self.drivers["file"], self.tmp / "records", heartbeat_interval=3600,
                           resync_interval=3600, poll_interval=0.02, backend="file", backends=self.drivers)

    async def send(self, msg: dict[str, Any]) -> None:
        await self.bus.publish(f"agent.volume.{HOST}", copy.deepcopy(msg))
        await self.settle()

    async def settle(self) -> None:
        for _ in range(5):
            await self.bus.drain()
            await self.agent.wait_idle()
        await self.bus.drain()

    async def until(self, generation: int, state: str) -> dict[str, Any]:
        for _ in range(250):
            await self.settle()
            mine = [r for r in self.reports if r["id"] == VOL and r["observed_generation"] == generation]
            if mine and mine[-1]["status"]["state"] == state:
                return mine[-1]["status"]  # type: ignore[no-any-return]
            await asyncio.sleep(0.02)
        raise AssertionError(f"generation {generation} never {state}: {self.reports}")


def put(generation: int, **spec: Any) -> dict[str, Any]:
    return {"op": "put", "type": "volume", "id": VOL, "generation": generation,
            "spec": {"size_gb": 1, "source": {"type": "blank"}, "upload": None, **spec}}


MIGRATE = {"migration": {"backend": "file2", "name_id": NEW, "new_type": None}}
SWITCHED = {"backend": "file2", "name_id": NEW, "retired": [{"backend": "file", "name": VOL}]}


def test_the_data_moves_and_the_old_file_goes_only_when_retired(tmp_path: Path) -> None:
    old, new = tmp_path / "volumes" / f"volume-{VOL}", tmp_path / "volumes" / "file2" / f"volume-{NEW}"

    async def scenario(n: Node) -> None:
        await n.agent.start()
        await n.send(put(1))
        await n.until(1, "ready")
        write_at(old, 300 * MiB, b"the volume's data")
        await n.send(put(2, **MIGRATE))
        status = await n.until(2, "ready")
        assert status["migrated"] == NEW and status["size_gb"] == 1
        # Copied, and both exist until the controller switches the volume (its next generation).
        assert read_at(new, 300 * MiB, 17) == b"the volume's data" and old.exists()
        assert new.stat().st_size == GiB and new.stat().st_blocks * 512 < 64 * MiB  # holes kept
        # A full sync that names the volume leaves the copy alone (it is the migration's).
        await n.send({"op": "sync", "types": ["volume", "snapshot"], "ids": {"volume": [VOL], "snapshot": []}})
        assert new.exists()
        await n.send(put(3, **SWITCHED))
        status = await n.until(3, "ready")
        assert "migrated" not in status and not old.exists() and new.exists()
        # Delete: the file named after its name_id goes, on the backend it is on.
        await n.send({"op": "delete", "type": "volume", "id": VOL, "generation": 4, "names": [NEW]})
        await n.until(4, "deleted")
        assert not new.exists() and not old.exists()
        await n.agent.stop(cleanup=True)
        await n.bus.close()

    asyncio.run(scenario(Node(tmp_path)))


def test_a_restart_mid_copy_leaves_no_part_file_and_finishes(tmp_path: Path) -> None:
    file2 = tmp_path / "volumes" / "file2"

    async def scenario(n: Node) -> None:
        await n.agent.start()
        await n.send(put(1))
        await n.until(1, "ready")
        write_at(tmp_path / "volumes" / f"volume-{VOL}", 5 * MiB, b"kept")
        await n.agent.stop(cleanup=True)
        # What a crash in the middle of the copy leaves: a half-written file under the .part- name.
        part = file2 / f".part-volume-{NEW}"
        part.write_bytes(b"half")
        n.agent = n.new_agent()
        await n.agent.start()
        assert not part.exists()  # init_host dropped it
        await n.send(put(2, **MIGRATE))  # the controller re-sends the row's document after the restart
        await n.until(2, "ready")
        assert read_at(file2 / f"volume-{NEW}", 5 * MiB, 4) == b"kept"
        assert sorted(os.listdir(file2)) == [".host", f"volume-{NEW}"]
        await n.agent.stop(cleanup=True)
        await n.bus.close()

    asyncio.run(scenario(Node(tmp_path)))


def test_a_failed_copy_is_reported_and_the_volume_stays(tmp_path: Path) -> None:
    from tinystack.volume.drivers.base import DriverError

    async def scenario(n: Node) -> None:
        dest = n.drivers["file2"]
        assert isinstance(dest, FakeVolumeDriver)
        await n.agent.start()
        await n.send(put(1))
        await n.until(1, "ready")
        dest.fail("copy_volume", DriverError("disk full", permanent=True))
        await n.send(put(2, **MIGRATE))
        status = await n.until(2, "error")
        assert status["reason"] == "disk full" and "migrated" not in status
        # The controller ends the migration (error) and retires the destination: back to ready where it was.
        await n.send(put(3, retired=[{"backend": "file2", "name": NEW}]))
        await n.until(3, "ready")
        src = n.drivers["file"]
        assert isinstance(src, FakeVolumeDriver)
        assert VOL in src.volumes and NEW not in dest.volumes
        await n.agent.stop(cleanup=True)
        await n.bus.close()

    asyncio.run(scenario(Node(tmp_path, fake=True)))


def test_enabled_backends_each_a_directory_the_first_the_default(tmp_path: Path) -> None:
    import pytest

    from tinystack import config
    from tinystack.volume import agent_settings, settings

    def load(**volume: str) -> config.Config:
        return config.load(None, environ={}, overrides={"state_dir": str(tmp_path), "host": "n1",
                                                         **{f"volume__{k}": v for k, v in volume.items()}})

    agent = agent_settings.load(load())
    assert agent.backends == {"file": tmp_path / "volumes", "file2": tmp_path / "volumes" / "file2"}
    api = settings.load(load())
    assert api.backend_name == "file" and api.backends == ("file", "file2")
    assert settings.load(load(backend_name="lvm")).backends == ("lvm",)  # the older one-backend setting
    assert agent_settings.load(load(enabled_backends="fast, slow")).backends == {
        "fast": tmp_path / "volumes", "slow": tmp_path / "volumes" / "slow"}
    for bad in ("", "a,a", "../up", "a b"):
        with pytest.raises(ValueError, match="enabled_backends"):
            agent_settings.load(load(enabled_backends=bad))


def test_the_doctor_looks_in_every_backend_and_knows_name_ids(tmp_path: Path) -> None:
    from tinystack.doctor import orphans

    root, second = tmp_path / "volumes", tmp_path / "volumes" / "file2"
    second.mkdir(parents=True)
    for path in (root / f"volume-{VOL}", second / f"volume-{NEW}", second / "volume-0b7c5a6e-2f7d-4c39-9d5e-000000000000"):
        path.write_bytes(b"")
    seen = asyncio.run(orphans.gather("h1", "tsnode-h1", tmp_path / "instances", root, False, [], (second,)))
    assert {p.name for p in seen.volume_files} == {f"volume-{VOL}", f"volume-{NEW}",
                                                   "volume-0b7c5a6e-2f7d-4c39-9d5e-000000000000"}
    # The migrated volume's file (its name_id) is known; the third is an orphan.
    found = orphans.compare(seen, orphans.Known(volumes={VOL, NEW}))
    assert [f.subject for f in found if f.problem] == [str(second / "volume-0b7c5a6e-2f7d-4c39-9d5e-000000000000")]
