"""The volume agent's reconcile rules, through the fake driver and a real in-process bus with contract documents."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.waiting import until
from tinystack import config
from tinystack.core.bus import InProcessBus
from tinystack.volume import agent as agent_mod
from tinystack.volume import agent_settings
from tinystack.volume.agent import VolumeAgent
from tinystack.volume.drivers.base import DriverError, GiB
from tinystack.volume.drivers.fake import FakeVolumeDriver

HOST = "vol-test"
VOL = "0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0a11"
VOL2 = "0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0a12"
SNAP = "5a1d2c3b-0000-4c39-9d5e-5d0c3e1f0a21"
IMAGE = "9e9e9e9e-0000-4c39-9d5e-5d0c3e1f0a31"


def volume_spec(size_gb: int = 1, source: dict[str, Any] | None = None,
                upload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"size_gb": size_gb, "source": source or {"type": "blank"}, "upload": upload}


class Harness:
    def __init__(self, tmp: Path, driver: FakeVolumeDriver | None = None, source_timeout: float = 120.0) -> None:
        self.bus = InProcessBus()
        self.driver = driver or FakeVolumeDriver(capacity_gb=100, images={IMAGE: 3 * GiB // 2})
        self.tmp = tmp
        self.source_timeout = source_timeout
        self.msgs: dict[str, list[dict[str, Any]]] = {}
        for topic in ("status.volume", "heartbeat", "resync.volume"):
            self.bus.subscribe(topic, self._collector(topic))
        self.agent = self.new_agent()
        self.gens: dict[str, int] = {}

    def _collector(self, topic: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def collect(msg: dict[str, Any]) -> None:
            self.msgs.setdefault(topic, []).append(msg)
        return collect

    def new_agent(self) -> VolumeAgent:
        return VolumeAgent(self.bus, HOST, self.driver, self.tmp / "records", heartbeat_interval=0.05,
                           resync_interval=3600, source_timeout=self.source_timeout, poll_interval=0.02)

    async def settle(self) -> None:
        for _ in range(5):
            await self.bus.drain()
            await self.agent.wait_idle()
        await self.bus.drain()

    def next_gen(self, kind: str, rid: str, generation: int | None) -> int:
        self.gens[rid] = generation if generation is not None else self.gens.get(rid, 0) + 1
        return self.gens[rid]

    async def put(self, kind: str, rid: str, spec: dict[str, Any], generation: int | None = None) -> None:
        gen = self.next_gen(kind, rid, generation)
        await self.bus.publish(f"agent.volume.{HOST}", {"op": "put", "type": kind, "id": rid, "generation": gen,
                                                         "spec": copy.deepcopy(spec)})
        await self.settle()

    async def delete(self, kind: str, rid: str) -> None:
        gen = self.next_gen(kind, rid, None)
        await self.bus.publish(f"agent.volume.{HOST}", {"op": "delete", "type": kind, "id": rid, "generation": gen})
        await self.settle()

    async def sync(self, ids: dict[str, list[str]]) -> None:
        await self.bus.publish(f"agent.volume.{HOST}", {"op": "sync", "types": ["volume", "snapshot"], "ids": ids})
        await self.settle()

    def statuses(self, rid: str) -> list[dict[str, Any]]:
        return [m for m in self.msgs.get("status.volume", []) if m["id"] == rid]

    def last(self, rid: str) -> dict[str, Any]:
        return self.statuses(rid)[-1]

    async def until(self, rid: str, state: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """The first report of ``rid`` in ``state`` (with ``fields`` in its status), waiting for retries and timers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.settle()
            if self.statuses(rid):
                status = self.last(rid)["status"]
                if status["state"] == state and all(status.get(k) == v for k, v in fields.items()):
                    return self.last(rid)
            await asyncio.sleep(0.02)
        raise AssertionError(f"{rid} never reached {state} {fields}: {self.statuses(rid)}")


def run(tmp_path: Path, scenario: Callable[[Harness], Awaitable[None]], **kw: Any) -> Harness:
    async def main() -> Harness:
        h = Harness(tmp_path, **kw)
        await h.agent.start()
        try:
            await scenario(h)
        finally:
            await h.agent.stop(cleanup=True)
            await h.bus.close()
        return h

    return asyncio.run(main())


def test_put_makes_the_volume_and_reports_it_ready(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put("volume", VOL, volume_spec(2))
        assert h.driver.volumes[VOL] == 2 * GiB
        assert h.last(VOL) == {"type": "volume", "id": VOL, "host": HOST, "observed_generation": 1,
                               "status": {"state": "ready", "size_gb": 2, "upload_seq": 0}}
        # Extend: a newer generation asks for more; a smaller size never shrinks it.
        await h.put("volume", VOL, volume_spec(5))
        assert h.driver.volumes[VOL] == 5 * GiB
        assert h.last(VOL)["observed_generation"] == 2 and h.last(VOL)["status"]["size_gb"] == 5
        await h.put("volume", VOL, volume_spec(3))
        assert h.driver.volumes[VOL] == 5 * GiB and h.last(VOL)["status"]["size_gb"] == 5
        assert [op for op, _ in h.driver.calls].count("create_volume") == 1
        # The next heartbeat (every 0.05 s) counts the extended volume.
        beats = len(h.msgs.get("heartbeat", []))
        await until(lambda: len(h.msgs.get("heartbeat", [])) > beats, 5, "a heartbeat after the extend")
        beat = h.msgs["heartbeat"][-1]
        assert beat["agent"] == "volume" and beat["host"] == HOST and beat["binary"] == "tinystack-volume-agent"
        assert beat["capacity_gb"] == 100 and beat["free_gb"] == 95
        assert isinstance(beat["time"], float)

    h = run(tmp_path, scenario)
    assert h.msgs["resync.volume"] == [{"host": HOST}]
    # Volumes are data: stopping with cleanup leaves them.
    assert h.driver.volumes == {VOL: 5 * GiB}


def test_snapshot_before_its_volume_waits_then_is_ready(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put("snapshot", SNAP, {"volume_id": VOL})
        assert h.statuses(SNAP) == []  # waiting, not failed
        assert SNAP not in h.driver.snapshots
        await h.put("volume", VOL, volume_spec(2))
        done = await h.until(SNAP, "ready")
        assert done == {"type": "snapshot", "id": SNAP, "host": HOST, "observed_generation": 1,
                        "status": {"state": "ready", "size_gb": 2}}
        assert h.driver.snapshots[SNAP] == 2 * GiB
        # A volume from the snapshot; and one from a volume.
        await h.put("volume", VOL2, volume_spec(3, {"type": "snapshot", "id": SNAP}))
        assert h.last(VOL2)["status"] == {"state": "ready", "size_gb": 3, "upload_seq": 0}
        third = "0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0a13"
        await h.put("volume", third, volume_spec(2, {"type": "volume", "id": VOL}))
        assert h.driver.volumes[third] == 2 * GiB

    run(tmp_path, scenario)


def test_a_source_that_never_comes_is_an_error_with_the_reason(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put("snapshot", SNAP, {"volume_id": VOL})
        error = await h.until(SNAP, "error")
        assert error["status"] == {"state": "error", "reason": f"volume {VOL} not found after waiting 0.2s"}
        await h.put("volume", VOL2, volume_spec(1, {"type": "snapshot", "id": "missing"}))
        error = await h.until(VOL2, "error")
        assert error["status"]["reason"].startswith("snapshot missing not found")
        assert VOL2 not in h.driver.volumes

    run(tmp_path, scenario, source_timeout=0.2)


def test_delete_removes_it_and_reports_deleted(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put("volume", VOL, volume_spec(1))
        await h.put("snapshot", SNAP, {"volume_id": VOL})
        await h.delete("snapshot", SNAP)
        assert h.last(SNAP) == {"type": "snapshot", "id": SNAP, "host": HOST, "observed_generation": 2,
                                "status": {"state": "deleted"}}
        await h.delete("volume", VOL)
        assert h.last(VOL)["status"] == {"state": "deleted"} and h.last(VOL)["observed_generation"] == 2
        assert h.driver.volumes == {} and h.driver.snapshots == {}
        # A put older than the delete, delivered late, does not bring it back; a delete twice is one delete.
        await h.put("volume", VOL, volume_spec(1), generation=1)
        assert VOL not in h.driver.volumes
        before = len(h.statuses(VOL))
        await h.bus.publish(f"agent.volume.{HOST}", {"op": "delete", "type": "volume", "id": VOL, "generation": 2})
        await h.settle()
        assert len(h.statuses(VOL)) == before

    run(tmp_path, scenario)


def test_sync_removes_garbage_and_keeps_what_is_named(tmp_path: Path) -> None:
    driver = FakeVolumeDriver()
    driver.volumes = {"garbage": GiB, VOL: GiB}
    driver.snapshots = {"old-snap": GiB}

    async def scenario(h: Harness) -> None:
        # A restarted agent adopts what exists and removes nothing until the controller says what is desired.
        assert h.driver.volumes.keys() == {"garbage", VOL}
        await h.put("volume", VOL, volume_spec(1))
        await h.put("volume", VOL2, volume_spec(1))  # received just now: a sync computed earlier may miss it
        await h.sync({"volume": [VOL], "snapshot": []})
        assert h.driver.volumes.keys() == {VOL, VOL2}
        assert h.driver.snapshots == {}
        assert not [m for m in h.msgs.get("status.volume", []) if m["id"] in ("garbage", "old-snap")]
        # A sync of other types leaves volumes alone.
        await h.bus.publish(f"agent.volume.{HOST}", {"op": "sync", "types": ["backup"], "ids": {}})
        await h.settle()
        assert h.driver.volumes.keys() == {VOL, VOL2}

    run(tmp_path, scenario, driver=driver)


def test_duplicate_and_older_puts_are_ignored(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put("volume", VOL, volume_spec(2), generation=2)
        reports = len(h.statuses(VOL))
        calls = len(h.driver.calls)
        await h.put("volume", VOL, volume_spec(2), generation=2)  # at-least-once: delivered again
        await h.put("volume", VOL, volume_spec(7), generation=1)  # older, delivered late
        assert h.driver.volumes[VOL] == 2 * GiB
        assert len(h.statuses(VOL)) == reports and len(h.driver.calls) == calls
        assert h.last(VOL)["observed_generation"] == 2

    run(tmp_path, scenario)


def test_failures_are_retried_then_reported_with_the_reason(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        # Two transient failures, then it works.
        h.driver.fail("create_volume", DriverError("disk busy"), times=2)
        await h.put("volume", VOL, volume_spec(1))
        ready = await h.until(VOL, "ready")
        assert ready["status"]["size_gb"] == 1
        assert [op for op, _ in h.driver.calls].count("create_volume") == 3
        # Three transient failures: error, with the reason.
        h.driver.fail("create_volume", DriverError("disk on fire"), times=3)
        await h.put("volume", VOL2, volume_spec(1))
        error = await h.until(VOL2, "error")
        assert error["status"] == {"state": "error", "reason": "disk on fire"}
        # A permanent failure goes at once: an image that does not fit.
        big = "0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0a14"
        await h.put("volume", big, volume_spec(1, {"type": "image", "id": IMAGE, "disk_format": "qcow2"}))
        assert h.last(big)["status"] == {
            "state": "error", "reason": "Image virtual size is 2GB and doesn't fit in a volume of size 1GB."}
        # The next generation tries again (the user asked for a larger volume).
        await h.put("volume", big, volume_spec(2, {"type": "image", "id": IMAGE, "disk_format": "qcow2"}))
        assert h.last(big)["status"] == {"state": "ready", "size_gb": 2, "upload_seq": 0}
        # A failed extend keeps the size the volume has.
        h.driver.fail("extend_volume", DriverError("no space left", permanent=True))
        await h.put("volume", VOL, volume_spec(4))
        assert h.last(VOL)["status"] == {"state": "error", "reason": "no space left", "size_gb": 1,
                                         "upload_seq": 0}

    run(tmp_path, scenario)


def test_upload_happens_once_per_seq_even_across_restarts(tmp_path: Path) -> None:
    target = "9e9e9e9e-0000-4c39-9d5e-5d0c3e1f0a32"
    spec = volume_spec(1, upload={"seq": 1, "image_id": target, "disk_format": "qcow2"})

    async def scenario(h: Harness) -> None:
        await h.put("volume", VOL, spec)
        assert h.driver.uploads == [(VOL, target, "qcow2")]
        assert h.last(VOL)["status"] == {"state": "ready", "size_gb": 1, "upload_seq": 1}
        # The agent restarts; the controller answers its resync with the same document.
        await h.agent.stop(cleanup=False)
        h.agent = h.new_agent()
        await h.agent.start()
        await h.put("volume", VOL, spec, generation=h.gens[VOL])
        assert len(h.driver.uploads) == 1
        assert h.last(VOL)["status"]["upload_seq"] == 1
        # An upload that fails for good is an error of its generation that says which upload failed, and why;
        # the volume keeps its data and the next generation does not try that upload again.
        h.driver.fail("upload_volume", DriverError("image gone", permanent=True))
        failing = {"seq": 2, "image_id": "9e9e9e9e-0000-4c39-9d5e-5d0c3e1f0a33", "disk_format": "raw"}
        await h.put("volume", VOL, volume_spec(1, upload=failing))
        assert h.last(VOL)["status"] == {"state": "error", "reason": "image gone", "size_gb": 1, "upload_seq": 1,
                                         "upload_error": {"seq": 2, "reason": "image gone"}}
        await h.put("volume", VOL, volume_spec(2, upload=failing))  # an extend later: no second try of seq 2
        assert h.last(VOL)["status"] == {"state": "ready", "size_gb": 2, "upload_seq": 1,
                                         "upload_error": {"seq": 2, "reason": "image gone"}}
        assert len(h.driver.uploads) == 1
        assert [op for op, _ in h.driver.calls].count("upload_volume") == 2
        # A transient failure is retried: seq 3 works on the second try.
        h.driver.fail("upload_volume", DriverError("image API unreachable"))
        third = {"seq": 3, "image_id": "9e9e9e9e-0000-4c39-9d5e-5d0c3e1f0a34", "disk_format": "qcow2"}
        await h.put("volume", VOL, volume_spec(2, upload=third))
        done = await h.until(VOL, "ready", upload_seq=3)
        assert done["status"] == {"state": "ready", "size_gb": 2, "upload_seq": 3}
        assert [op for op, _ in h.driver.calls].count("upload_volume") == 4
        assert h.driver.uploads[-1] == (VOL, third["image_id"], "qcow2")

    run(tmp_path, scenario)


def test_build_reads_the_volume_section(tmp_path: Path) -> None:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path), "host": "node-a",
                                                   "volume__driver": "fake", "volume__heartbeat_interval": "5"})
    settings = agent_settings.load(cfg)
    assert settings.volumes_path == tmp_path / "volumes" and settings.host == "node-a"
    assert (settings.heartbeat_interval, settings.resync_interval, settings.image_timeout) == (5.0, 30.0, 600.0)
    agent = agent_mod.build(cfg, InProcessBus())
    assert isinstance(agent, VolumeAgent) and isinstance(agent.driver, FakeVolumeDriver)
    assert agent.topic == "agent.volume.node-a"
    bad = config.load(None, environ={}, overrides={"state_dir": str(tmp_path), "volume__driver": "lvm"})
    try:
        agent_settings.load(bad)
    except ValueError as exc:
        assert "driver" in str(exc)
    else:
        raise AssertionError("an unknown driver was accepted")
