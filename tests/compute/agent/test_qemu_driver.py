"""The QEMU driver for real: a tiny guest boots in a test-made node namespace on a test-made tap, and what
QEMU says over QMP agrees with what the agent was asked for."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compute.agent import testguest
from tests.compute.agent.conftest import GuestImages, NodeNs
from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.qemu import QemuDriver, process, qmp
from tinystack.compute.drivers.qemu.layout import InstanceDir
from tinystack.core.bus import InProcessBus
from tinystack.core.svcauth import ServiceAuth

pytestmark = [pytest.mark.guest, pytest.mark.privileged, pytest.mark.slow]

HOST = "qemu-test"


def make_spec(images: GuestImages, tap: str | None = None, port_id: str = "", **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": str(uuid.uuid4()), "name": "vm", "hostname": "vm", "project_id": "p", "user_id": "u",
        "flavor": {"vcpus": 1, "memory_mb": 128, "root_gb": 1, "ephemeral_gb": 0, "swap_mb": 0, "extra_specs": {}},
        "image": {"id": images.root_id, "disk_format": "qcow2", "container_format": "bare", "size": 0,
                  "checksum": None, "properties": {}},
        "kernel_image_id": images.kernel_id, "ramdisk_image_id": images.ramdisk_id,
        "nics": [{"port_id": port_id, "mac_address": "fa:16:3e:12:34:56", "tap": tap, "fixed_ips": []}] if tap else [],
        "power": "running", "rescue": False, "reboot": {"seq": 0, "hard": False}, "snapshot": None,
        "config_drive": None, "admin_pass": None, "console_log_max_bytes": 1 << 20,
    }
    spec.update(changes)
    return spec


def make_driver(tmp_path: Path, images: GuestImages, netns: str | None) -> QemuDriver:
    auth = ServiceAuth.from_file(images.service_yaml)
    return QemuDriver(tmp_path / "instances", tmp_path / "cache", lambda: auth, netns=netns, kvm="auto",
                      power_off_timeout=20, tap_wait_timeout=5)


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def console(driver: QemuDriver, iid: str) -> str:
    path = Path(driver.console_log_path(iid))
    return path.read_text(errors="replace") if path.exists() else ""


class Run:
    """The agent with the QEMU driver on an in-process bus; collects what it publishes."""

    def __init__(self, tmp_path: Path, images: GuestImages, netns: str) -> None:
        self.tmp_path, self.images, self.netns = tmp_path, images, netns
        self.bus = InProcessBus()
        self.status: list[dict[str, Any]] = []

        async def collect(msg: dict[str, Any]) -> None:
            self.status.append(msg)
        self.bus.subscribe("status.compute", collect)
        self.gen = 0
        self.agent = self.new_agent()

    def new_agent(self) -> ComputeAgent:
        self.driver = make_driver(self.tmp_path, self.images, self.netns)
        return ComputeAgent(self.bus, HOST, self.driver, self.tmp_path / "records", power_off_timeout=20,
                            resync_interval=3600)

    async def put(self, spec: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        self.gen += 1
        await self.bus.publish(f"agent.compute.{HOST}", {"op": "put", "type": "instance", "id": spec["id"],
                                                          "generation": self.gen, "spec": copy.deepcopy(spec)})
        return await self.settled(spec["id"], timeout)

    async def settled(self, iid: str, timeout: float = 120) -> dict[str, Any]:
        def done() -> bool:
            return any(m["type"] == "instance" and m["id"] == iid and m["observed_generation"] == self.gen
                       and m["status"]["task_state"] is None for m in self.status)
        await until(done, timeout, f"generation {self.gen}")
        return [m for m in self.status if m["type"] == "instance" and m["id"] == iid][-1]["status"]

    async def runstate(self, iid: str) -> str:
        return await qmp.runstate(InstanceDir(self.tmp_path / "instances" / iid).qmp)


async def blocks(idir: InstanceDir) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await qmp.execute(idir.qmp, "query-block")
    return [b for b in result if b.get("inserted")]


def test_guest_life_cycle_through_the_agent(live: LiveCloud, guest_images: GuestImages, node_ns: NodeNs,
                                            tmp_path: Path) -> None:
    port_id = uuid.uuid4().hex
    tap = node_ns.add_tap(port_id)
    spec = make_spec(guest_images, tap, port_id)
    iid = spec["id"]
    idir = InstanceDir(tmp_path / "instances" / iid)

    async def scenario() -> None:
        r = Run(tmp_path, guest_images, node_ns.name)
        await r.agent.start()
        try:
            # Boot: the guest prints its marker and sees the port's MAC on its virtio NIC.
            status = await r.put(spec)
            assert status["vm_state"] == "active" and status["power_state"] == 1, status
            assert status["console_log"] == str(idir.console_log)
            assert await r.runstate(iid) == "running"
            await until(lambda: testguest.READY_MARK in console(r.driver, iid), 90, "the guest to boot")
            assert "TSGUEST-NIC eth0 fa:16:3e:12:34:56" in console(r.driver, iid)
            assert status["diagnostics"]["num_nics"] == 1 and status["diagnostics"]["state"] == "running"
            # QEMU runs inside the node namespace.
            pid = process.pid_of(idir)
            assert pid is not None
            assert Path(f"/proc/{pid}/ns/net").resolve() == Path(f"/run/netns/{node_ns.name}").resolve() or \
                Path(f"/proc/{pid}/ns/net").stat().st_ino == Path(f"/run/netns/{node_ns.name}").stat().st_ino

            # Pause / unpause: QMP agrees.
            status = await r.put(dict(spec, power="paused"))
            assert status["power_state"] == 3 and await r.runstate(iid) == "paused"
            status = await r.put(dict(spec, power="running"))
            assert status["power_state"] == 1 and await r.runstate(iid) == "running"

            # Agent restart: the guest keeps running and is adopted, not rebuilt or rebooted.
            await r.agent.stop(cleanup=False)
            assert process.pid_of(idir) == pid
            r.agent = r.new_agent()
            await r.agent.start()
            status = await r.put(spec)
            assert process.pid_of(idir) == pid and status["power_state"] == 1
            assert console(r.driver, iid).count(testguest.BOOT_MARK) == 1

            # Hard reboot: the same process, a new boot (and the new agent drains the console again).
            status = await r.put(dict(spec, reboot={"seq": 1, "hard": True}))
            assert process.pid_of(idir) == pid and status["power_state"] == 1
            await until(lambda: console(r.driver, iid).count(testguest.READY_MARK) == 2, 90, "the reboot")

            # Soft reboot: the guest takes the ACPI power button, goes down, and boots again in a new process.
            status = await r.put(dict(spec, reboot={"seq": 2, "hard": False}))
            assert status["power_state"] == 1 and process.pid_of(idir) not in (None, pid)
            await until(lambda: console(r.driver, iid).count(testguest.READY_MARK) == 3, 90, "the soft reboot")
            assert testguest.OFF_MARK in console(r.driver, iid)
            spec["reboot"] = {"seq": 2, "hard": False}

            # Rescue: a fresh copy of the image boots first, the original root disk is the second disk.
            status = await r.put(dict(spec, rescue=True))
            assert status["vm_state"] == "rescued" and status["power_state"] == 1
            files = [b["inserted"]["file"] for b in await blocks(idir)]
            assert files[:2] == [str(idir.rescue_disk), str(idir.disk)]
            await until(lambda: console(r.driver, iid).count(testguest.READY_MARK) == 4, 90, "the rescue boot")
            status = await r.put(spec)
            assert status["vm_state"] == "active" and not idir.rescue_disk.exists()
            assert (await blocks(idir))[0]["inserted"]["file"] == str(idir.disk)
            await until(lambda: console(r.driver, iid).count(testguest.READY_MARK) == 5, 90, "the unrescue boot")

            # Resize: more memory and a bigger root disk, applied with the guest off, then it runs again.
            spec["flavor"] = dict(spec["flavor"], memory_mb=192, root_gb=2)
            status = await r.put(spec)
            assert status["power_state"] == 1
            mem = await qmp.execute(idir.qmp, "query-memory-size-summary")
            assert mem["base-memory"] == 192 << 20
            assert (await blocks(idir))[0]["inserted"]["image"]["virtual-size"] == 2 << 30
            await until(lambda: console(r.driver, iid).count(testguest.READY_MARK) == 6, 90, "the resized boot")
            boots = console(r.driver, iid).count(testguest.BOOT_MARK)

            # Suspend to a file and resume: memory comes back, so the guest does not boot again.
            status = await r.put(dict(spec, power="suspended"))
            assert status["vm_state"] == "suspended" and status["power_state"] == 7
            assert process.pid_of(idir) is None and idir.memory_save.stat().st_size > 1 << 20
            status = await r.put(spec)
            assert status["power_state"] == 1 and await r.runstate(iid) == "running"
            assert not idir.memory_save.exists()
            assert console(r.driver, iid).count(testguest.BOOT_MARK) == boots

            # Graceful stop: the guest sees the ACPI power button and powers itself off.
            status = await r.put(dict(spec, power="stopped"))
            assert status["vm_state"] == "stopped" and status["power_state"] == 4
            assert process.pid_of(idir) is None
            assert testguest.OFF_MARK in console(r.driver, iid)

            # Snapshot of the stopped guest into an image the API side created.
            conn = live.conn("admin")
            snap = conn.image.create_image(name="tsguest-snap", disk_format="qcow2", container_format="bare")
            status = await r.put(dict(spec, power="stopped", snapshot={"seq": 1, "image_id": snap.id}))
            assert status["fault"] is None
            snap = conn.image.get_image(snap.id)
            assert snap.status == "active" and snap.size > 0

            # Start again, then delete: nothing of it is left.
            status = await r.put(dict(spec, snapshot={"seq": 1, "image_id": snap.id}))
            assert status["power_state"] == 1 and process.pid_of(idir) is not None
            await r.bus.publish(f"agent.compute.{HOST}", {"op": "delete", "type": "instance", "id": iid,
                                                          "generation": r.gen + 1})
            r.gen += 1
            await until(lambda: any(m["type"] == "instance" and m["status"]["vm_state"] == "deleted"
                                    for m in r.status), 60, "the delete")
            assert not idir.path.exists()
        finally:
            await r.agent.stop(cleanup=True)
            await r.bus.close()

    asyncio.run(scenario())
    assert not list(tmp_path.rglob("qemu.pid")) or all(process.pid_of(InstanceDir(p.parent)) is None
                                                       for p in tmp_path.rglob("qemu.pid"))


def test_cleanup_stops_every_guest_and_restart_boots_them_again(live: LiveCloud, guest_images: GuestImages,
                                                                node_ns: NodeNs, tmp_path: Path) -> None:
    spec = make_spec(guest_images)  # no NIC: runs in the node namespace all the same
    idir = InstanceDir(tmp_path / "instances" / spec["id"])

    async def scenario() -> None:
        r = Run(tmp_path, guest_images, node_ns.name)
        await r.agent.start()
        try:
            await r.put(spec)
            assert process.pid_of(idir) is not None
            await until(lambda: testguest.READY_MARK in console(r.driver, spec["id"]), 90, "the guest to boot")
            await r.agent.stop(cleanup=True)  # tinystack up exiting
            assert testguest.OFF_MARK in console(r.driver, spec["id"])  # it was asked, not killed
            assert process.pid_of(idir) is None and idir.disk.exists()
            r.agent = r.new_agent()
            await r.agent.start()
            r.gen -= 1
            r.status.clear()
            status = await r.put(spec)  # the controller's answer to resync: same generation
            assert status["power_state"] == 1 and process.pid_of(idir) is not None
            await until(lambda: console(r.driver, spec["id"]).count(testguest.READY_MARK) == 2, 90, "the restart")
        finally:
            await r.agent.stop(cleanup=True)
            await r.bus.close()
        assert process.pid_of(idir) is None

    asyncio.run(scenario())
    out = subprocess.run(["pgrep", "-f", f"instance-{spec['id']}"], capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_disks_follow_the_flavor_and_config_drive(live: LiveCloud, guest_images: GuestImages, tmp_path: Path) -> None:
    files = {"openstack/latest/meta_data.json": base64.b64encode(b'{"uuid": "x"}').decode(),
             "openstack/latest/user_data": base64.b64encode(b"#!/bin/sh\necho hi\n").decode()}
    flavor = {"vcpus": 1, "memory_mb": 128, "root_gb": 2, "ephemeral_gb": 1, "swap_mb": 16, "extra_specs": {}}
    spec = make_spec(guest_images, flavor=flavor, config_drive={"files": files})
    driver = make_driver(tmp_path, guest_images, None)
    idir = InstanceDir(tmp_path / "instances" / spec["id"])

    def vsize(path: Path) -> int:
        out = subprocess.run(["qemu-img", "info", "--output", "json", str(path)], capture_output=True, text=True)
        return int(json.loads(out.stdout)["virtual-size"])

    async def scenario() -> None:
        try:
            await disks_scenario()
        finally:
            # Ends the driver's background KVM probe: left to asyncio.run's teardown, which cancels every task at
            # once (the subprocess machinery's own too), a probe cancelled while its QEMU starts hangs forever.
            await driver.close(stop_guests=True)

    async def disks_scenario() -> None:
        await driver.init_host()
        await driver.create(spec)
        assert vsize(idir.disk) == 2 << 30 and vsize(idir.ephemeral) == 1 << 30
        assert idir.swap.stat().st_size == 16 << 20
        assert (await driver.get_info(spec["id"])).power_state == 4
        iso = subprocess.run(["isoinfo", "-d", "-i", str(idir.config_drive)], capture_output=True, text=True)
        assert "Volume id: config-2" in iso.stdout
        listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(idir.config_drive)], capture_output=True, text=True)
        assert "/openstack/latest/user_data" in listing.stdout
        # Resize up grows; a smaller flavor never shrinks.
        await driver.rebuild_disks(dict(spec, flavor=dict(flavor, root_gb=3, swap_mb=32)), recreate_root=False)
        assert vsize(idir.disk) == 3 << 30 and idir.swap.stat().st_size == 32 << 20
        await driver.rebuild_disks(dict(spec, flavor=dict(flavor, root_gb=1)), recreate_root=False)
        assert vsize(idir.disk) == 3 << 30
        # Rebuild: a fresh root disk from the image, at the flavor's size.
        await driver.rebuild_disks(dict(spec, flavor=dict(flavor, root_gb=2)), recreate_root=True)
        assert vsize(idir.disk) == 2 << 30
        # The base is cached once and survives cleanup while in use.
        assert (tmp_path / "cache" / guest_images.root_id).exists()
        driver.images.max_age = 0
        assert guest_images.root_id not in driver.images.cleanup({guest_images.root_id})
        await driver.destroy(spec["id"])
        await driver.destroy(spec["id"])  # already gone: still fine
        assert not idir.path.exists()
        assert not (tmp_path / "cache" / guest_images.root_id).exists()  # unused and old enough: removed
        # Fetched again on demand, with the image's own virtual size.
        again = await driver.images.get(guest_images.root_id)
        assert again.virtual_size == guest_images.root_virtual_size and again.format == "qcow2"

    asyncio.run(scenario())
    with pytest.raises(DriverError) as err:
        asyncio.run(_create_too_big(tmp_path, guest_images))
    assert err.value.permanent and "too small" in str(err.value)


async def _create_too_big(tmp_path: Path, images: GuestImages) -> None:
    driver = make_driver(tmp_path / "big", images, None)
    try:
        await driver.init_host()
        # A flavor whose root disk is smaller than the image's virtual size (2 GiB base, 1 GiB flavor).
        big = tmp_path / "big.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2G"], check=True)
        from tinystack.compute.drivers.qemu import disks
        from tinystack.compute.drivers.qemu.imagecache import Base
        await disks.create_overlay(tmp_path / "overlay", Base(big, "qcow2", 2 << 30), 1)
    finally:
        await driver.close(stop_guests=True)  # its KVM probe (see test_disks_follow_the_flavor_and_config_drive)


def test_snapshot_upload_refused_for_missing_image(live: LiveCloud, guest_images: GuestImages, tmp_path: Path) -> None:
    token = str(live.conn("admin").auth_token)
    assert requests.get(f"{live.url('image')}/v2/images/{uuid.uuid4()}", headers={"X-Auth-Token": token},
                        timeout=10).status_code == 404
    spec = make_spec(guest_images)
    driver = make_driver(tmp_path, guest_images, None)

    async def scenario() -> None:
        try:
            await driver.init_host()
            await driver.create(spec)
            with pytest.raises(DriverError) as err:
                await driver.snapshot(spec["id"], str(uuid.uuid4()))
            assert err.value.permanent
            await driver.destroy(spec["id"])
        finally:
            await driver.close(stop_guests=True)  # its KVM probe (see test_disks_follow_the_flavor_and_config_drive)

    asyncio.run(scenario())
