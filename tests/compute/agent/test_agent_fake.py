"""The compute agent's reconcile rules, through the fake driver and an in-process bus with contract docs."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.waiting import until
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.drivers.base import PAUSED, RUNNING, SHUTDOWN, SUSPENDED, DriverError
from tinystack.compute.drivers.fake import FakeDriver
from tinystack.core.bus import InProcessBus

HOST = "cmp-test"
IID = "0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0a11"


def instance_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": IID, "name": "vm1", "hostname": "vm1", "project_id": "p", "user_id": "u",
        "flavor": {"vcpus": 1, "memory_mb": 128, "root_gb": 1, "ephemeral_gb": 0, "swap_mb": 0, "extra_specs": {}},
        "image": {"id": "img-1", "disk_format": "qcow2", "container_format": "bare", "size": 1, "checksum": "x",
                  "properties": {}},
        "kernel_image_id": None, "ramdisk_image_id": None,
        "nics": [{"port_id": "p1", "mac_address": "fa:16:3e:00:00:01", "tap": "tapp1", "fixed_ips": []}],
        "power": "running", "rescue": False, "reboot": {"seq": 0, "hard": False}, "snapshot": None,
        "config_drive": None, "admin_pass": None, "console_log_max_bytes": 1 << 20,
    }
    spec.update(changes)
    return spec


class Harness:
    def __init__(self, tmp: Path, driver: FakeDriver | None = None) -> None:
        self.bus = InProcessBus()
        self.driver = driver or FakeDriver()
        self.tmp = tmp
        self.msgs: dict[str, list[dict[str, Any]]] = {}
        for topic in ("status.compute", "heartbeat", "resync.compute"):
            self.bus.subscribe(topic, self._collector(topic))
        self.agent = self.new_agent()
        self.gen = 0

    def _collector(self, topic: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def collect(msg: dict[str, Any]) -> None:
            self.msgs.setdefault(topic, []).append(msg)
        return collect

    def new_agent(self) -> ComputeAgent:
        return ComputeAgent(self.bus, HOST, self.driver, self.tmp / "records", power_off_timeout=0.1,
                            heartbeat_interval=0.05, resync_interval=3600)

    async def settle(self) -> None:
        for _ in range(5):
            await self.bus.drain()
            await self.agent.wait_idle()
        await self.bus.drain()

    async def put(self, spec: dict[str, Any], generation: int | None = None) -> None:
        self.gen = generation if generation is not None else self.gen + 1
        await self.bus.publish(f"agent.compute.{HOST}", {"op": "put", "type": "instance", "id": spec["id"],
                                                          "generation": self.gen, "spec": copy.deepcopy(spec)})
        await self.settle()

    def statuses(self, iid: str = IID) -> list[dict[str, Any]]:
        return [m for m in self.msgs.get("status.compute", []) if m["type"] == "instance" and m["id"] == iid]

    def last(self, iid: str = IID) -> dict[str, Any]:
        return self.statuses(iid)[-1]

    def ops(self) -> list[str]:
        return [op for op, _ in self.driver.calls]


def run(tmp_path: Path, scenario: Callable[[Harness], Awaitable[None]], driver: FakeDriver | None = None) -> None:
    async def main() -> None:
        h = Harness(tmp_path, driver)
        await h.agent.start()
        try:
            await scenario(h)
        finally:
            await h.agent.stop(cleanup=False)
            await h.bus.close()
    asyncio.run(main())


def test_start_announces_resync_node_and_heartbeat(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        # Heartbeats come every 0.05 s, each followed by the node's status if it changed: the third heartbeat
        # comes after the second round's node status would have been sent.
        await until(lambda: len(h.msgs.get("heartbeat", [])) >= 3, 5, "three heartbeats")
        await h.settle()
        assert h.msgs["resync.compute"] == [{"host": HOST}]
        beat = h.msgs["heartbeat"][0]
        assert beat["agent"] == "compute" and beat["host"] == HOST and beat["binary"] == "tinystack-compute-agent"
        assert len(h.msgs["heartbeat"]) >= 2
        nodes = [m for m in h.msgs["status.compute"] if m["type"] == "node"]
        assert len(nodes) == 1  # unchanged capacity is not re-sent with every heartbeat
        assert nodes[0]["id"] == HOST and nodes[0]["status"]["hypervisor_type"] == "QEMU"
        assert nodes[0]["status"]["running_vms"] == 0 and nodes[0]["status"]["vcpus"] == 16
    run(tmp_path, scenario)


def test_unchanged_node_report_is_sent_again_after_the_refresh(tmp_path: Path, monkeypatch: Any) -> None:
    """Level-triggered: a lost node report is repaired by the next re-send, each dated when it was built."""
    from tinystack.compute import agent_status

    monkeypatch.setattr(agent_status, "NODE_REFRESH", 0.2)

    async def scenario(h: Harness) -> None:
        def nodes() -> list[dict[str, Any]]:
            return [m for m in h.msgs.get("status.compute", []) if m["type"] == "node"]

        await until(lambda: len(nodes()) >= 3, 5, "the node report sent again")
        first, second = nodes()[0]["status"], nodes()[1]["status"]
        assert second["reported_at"] > first["reported_at"]
        assert {k: v for k, v in first.items() if k != "reported_at"} == \
            {k: v for k, v in second.items() if k != "reported_at"}
        # Between refreshes, heartbeats (every 0.05 s) do not repeat it.
        assert len(nodes()) < len(h.msgs["heartbeat"])
    run(tmp_path, scenario)


def test_put_builds_and_boots_once_and_reports_active(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        status = h.last()
        assert status["observed_generation"] == 1 and status["host"] == HOST
        assert status["status"]["vm_state"] == "active" and status["status"]["power_state"] == RUNNING
        assert status["status"]["task_state"] is None and status["status"]["fault"] is None
        assert status["status"]["diagnostics"]["num_nics"] == 1
        assert h.statuses()[0]["status"]["task_state"] == "spawning"
        assert h.ops() == ["create", "power_on"]
        # At-least-once: the same generation again changes nothing and says nothing new.
        n = len(h.statuses())
        await h.put(instance_spec(), generation=1)
        assert h.ops() == ["create", "power_on"] and len(h.statuses()) == n
        nodes = [m for m in h.msgs["status.compute"] if m["type"] == "node"]
        assert nodes[-1]["status"]["running_vms"] == 1
    run(tmp_path, scenario)


def test_power_transitions_follow_the_spec(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        expected = [("stopped", SHUTDOWN, "stopped", "power_off"), ("running", RUNNING, "active", "power_on"),
                    ("paused", PAUSED, "paused", "pause"), ("running", RUNNING, "active", "unpause"),
                    ("suspended", SUSPENDED, "suspended", "suspend"), ("running", RUNNING, "active", "power_on")]
        for power, power_state, vm_state, op in expected:
            await h.put(instance_spec(power=power))
            assert h.ops()[-1] == op, (power, h.ops())
            assert h.driver.guests[IID].power_state == power_state
            last = h.last()
            assert last["status"]["vm_state"] == vm_state and last["status"]["power_state"] == power_state
            assert last["observed_generation"] == h.gen
    run(tmp_path, scenario)


def test_reboot_and_snapshot_happen_once_per_seq(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        await h.put(instance_spec(reboot={"seq": 1, "hard": False}))
        await h.put(instance_spec(reboot={"seq": 1, "hard": False}))  # a new generation, same seq: no reboot
        await h.put(instance_spec(reboot={"seq": 2, "hard": True}))
        assert [op for op in h.ops() if op.startswith("reboot")] == ["reboot_soft", "reboot_hard"]
        tasks = [s["status"]["task_state"] for s in h.statuses()]
        assert "rebooting" in tasks and "rebooting_hard" in tasks
        snap = {"seq": 1, "image_id": "snap-1"}
        await h.put(instance_spec(reboot={"seq": 2, "hard": True}, snapshot=snap))
        await h.put(instance_spec(reboot={"seq": 2, "hard": True}, snapshot=snap))
        assert h.driver.guests[IID].snapshots == ["snap-1"]
        assert "image_uploading" in [s["status"]["task_state"] for s in h.statuses()]
        assert h.last()["status"]["task_state"] is None and h.last()["observed_generation"] == h.gen
    run(tmp_path, scenario)


def test_rescue_resize_and_rebuild(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        await h.put(instance_spec(rescue=True))
        assert h.driver.guests[IID].rescue and h.last()["status"]["vm_state"] == "rescued"
        await h.put(instance_spec(rescue=False))
        assert "unrescue" in h.ops() and not h.driver.guests[IID].rescue
        assert h.last()["status"]["vm_state"] == "active"
        bigger = dict(instance_spec()["flavor"], root_gb=2, memory_mb=256)
        h.driver.calls.clear()
        await h.put(instance_spec(flavor=bigger))
        assert h.ops() == ["power_off", "rebuild_disks", "power_on"]
        assert h.driver.guests[IID].spec["flavor"]["memory_mb"] == 256
        h.driver.calls.clear()
        await h.put(instance_spec(flavor=bigger, image=dict(instance_spec()["image"], id="img-2")))
        assert h.ops() == ["power_off", "rebuild_disks_new_root", "power_on"]
        assert "rebuilding" in [s["status"]["task_state"] for s in h.statuses()]
        # Rebuild with the same image: the seq says so.
        h.driver.calls.clear()
        same = dict(instance_spec()["image"], id="img-2")
        await h.put(instance_spec(flavor=bigger, image=same, rebuild={"seq": 1}))
        await h.put(instance_spec(flavor=bigger, image=same, rebuild={"seq": 1}))
        assert h.ops() == ["power_off", "rebuild_disks_new_root", "power_on"]
    run(tmp_path, scenario)


def test_delete_destroys_and_reports_deleted(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        await h.bus.publish(f"agent.compute.{HOST}", {"op": "delete", "type": "instance", "id": IID, "generation": 5})
        await h.settle()
        assert IID not in h.driver.guests
        assert h.last()["status"]["vm_state"] == "deleted" and h.last()["observed_generation"] == 5
        # A late put of an older generation must not bring it back.
        await h.put(instance_spec(), generation=4)
        assert IID not in h.driver.guests
    run(tmp_path, scenario)


def test_sync_removes_orphans_only(tmp_path: Path) -> None:
    other = "1c8f0d5e-7a6b-4e1f-9c2d-3b4a5f6e7d80"

    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        await h.driver.create(instance_spec(id=other))  # on the host, but nothing wants it
        await h.bus.publish(f"agent.compute.{HOST}", {"op": "sync", "types": ["instance"], "ids": {"instance": [IID]}})
        await h.settle()
        assert set(h.driver.guests) == {IID}
        assert h.driver.guests[IID].power_state == RUNNING
    run(tmp_path, scenario)


def test_permanent_failure_ends_in_error_with_fault(tmp_path: Path) -> None:
    driver = FakeDriver()
    driver.fail_on["create"] = DriverError("Flavor's disk is too small for requested image", permanent=True)

    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        last = h.last()["status"]
        assert last["vm_state"] == "error" and "too small" in last["fault"]["message"]
        assert h.ops() == ["create"]  # not retried
        # A new generation (e.g. rebuild) tries again.
        del driver.fail_on["create"]
        await h.put(instance_spec())
        assert h.last()["status"]["vm_state"] == "active" and h.last()["status"]["fault"] is None
    run(tmp_path, scenario, driver)


def test_a_put_asking_for_a_report_gets_the_last_status_again(tmp_path: Path) -> None:
    """The controller's sync marks a put ``report`` when it has not heard of that generation (the report was lost):
    the agent says its status again, an error's fault too, without touching the guest."""
    driver = FakeDriver()
    driver.fail_on["create"] = DriverError("Flavor's disk is too small for requested image", permanent=True)

    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        n = len(h.statuses())
        await h.bus.publish(f"agent.compute.{HOST}", {"op": "put", "type": "instance", "id": IID, "generation": 1,
                                                       "spec": instance_spec(), "report": True})
        await h.settle()
        assert len(h.statuses()) == n + 1 and h.ops() == ["create"]
        assert h.last()["observed_generation"] == 1 and "too small" in h.last()["status"]["fault"]["message"]
        del driver.fail_on["create"]
        await h.put(instance_spec())
        n = len(h.statuses())
        await h.bus.publish(f"agent.compute.{HOST}", {"op": "put", "type": "instance", "id": IID, "generation": 2,
                                                       "spec": instance_spec(), "report": True})
        await h.settle()
        assert len(h.statuses()) == n + 1 and h.last()["status"]["vm_state"] == "active"
        assert h.ops() == ["create", "create", "power_on"]
    run(tmp_path, scenario, driver)


def test_transient_failure_is_retried_then_errors(tmp_path: Path) -> None:
    driver = FakeDriver()
    driver.fail_on["power_on"] = DriverError("tap tapp1 did not appear")

    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        for _ in range(50):  # backoff 0.1 s, 0.2 s
            await asyncio.sleep(0.05)
            await h.settle()
            if h.last()["status"]["vm_state"] == "error":
                break
        assert h.ops().count("power_on") == 3
        assert h.last()["status"]["vm_state"] == "error" and "tap" in h.last()["status"]["fault"]["message"]
    run(tmp_path, scenario, driver)


def test_guest_that_shut_itself_down_stays_off(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put(instance_spec())
        h.driver.guests[IID].power_state = SHUTDOWN  # the guest ran `poweroff`
        h.agent.reconciler.enqueue(IID)  # the periodic resync
        await h.settle()
        assert h.driver.guests[IID].power_state == SHUTDOWN
        assert h.last()["status"]["vm_state"] == "stopped" and h.last()["status"]["power_state"] == SHUTDOWN
        await h.put(instance_spec())  # a new request to run it (os-start)
        assert h.driver.guests[IID].power_state == RUNNING
    run(tmp_path, scenario)


def test_disks_without_a_record_after_a_kill_are_started_not_taken_as_shut_down(tmp_path: Path) -> None:
    """The process died between making the disks and saving the record: the guest is off, not shut down."""
    async def scenario(h: Harness) -> None:
        await h.driver.create(instance_spec())  # what the killed agent got done
        await h.put(instance_spec())
        assert h.driver.guests[IID].power_state == RUNNING
        assert h.last()["status"]["vm_state"] == "active"
    run(tmp_path, scenario)


def test_restart_adopts_and_cleanup_restarts_on_next_start(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.put(instance_spec(reboot={"seq": 3, "hard": False}))
        await h.agent.stop(cleanup=False)
        assert h.driver.guests[IID].power_state == RUNNING  # guests outlive the agent
        h.driver.calls.clear()
        h.agent = h.new_agent()
        await h.agent.start()
        await h.put(instance_spec(reboot={"seq": 3, "hard": False}), generation=h.gen)
        assert h.ops() == []  # adopted: no rebuild, no reboot replay
        await h.agent.stop(cleanup=True)
        assert h.driver.guests[IID].power_state == SHUTDOWN
        h.agent = h.new_agent()
        await h.agent.start()
        await h.put(instance_spec(reboot={"seq": 3, "hard": False}), generation=h.gen)
        assert h.ops() == ["power_on"] and h.driver.guests[IID].power_state == RUNNING
    run(tmp_path, scenario)
