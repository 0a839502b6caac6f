"""The QEMU driver moving a real guest between two nodes that share the instances path: two test-made node
namespaces joined by a veth pair stand in for the underlay. A send to where nobody listens fails and leaves the
guest running; a live migration hands the same running guest (no second boot) to the other node's QEMU."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compute.agent import testguest
from tests.compute.agent.conftest import GuestImages, kill_guests
from tests.compute.agent.test_qemu_driver import console, make_spec, until
from tests.livecloud import LiveCloud
from tinystack.compute.drivers.base import RUNNING, SHUTDOWN, DriverError
from tinystack.compute.drivers.qemu import QemuDriver, process
from tinystack.compute.drivers.qemu.layout import InstanceDir
from tinystack.core.svcauth import ServiceAuth

pytestmark = [pytest.mark.guest, pytest.mark.privileged, pytest.mark.slow]

ADDRESSES = {"a": "10.251.0.1", "b": "10.251.0.2"}


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Two namespaces (``a``, ``b``) whose veth pair carries ``ADDRESSES``; removed afterwards, with any QEMU."""
    tag = secrets.token_hex(3)
    names = {k: f"tsmg-{tag}{k}" for k in ADDRESSES}
    try:
        for name in names.values():
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", names["a"], "link", "add", "mg0", "type", "veth", "peer", "name", "mg0",
                        "netns", names["b"]], check=True)
        for key, name in names.items():
            subprocess.run(["ip", "-n", name, "addr", "add", f"{ADDRESSES[key]}/24", "dev", "mg0"], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "mg0", "up"], check=True)
        yield names
    finally:
        kill_guests(tmp_path)
        for name in names.values():
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def node(tmp_path: Path, images: GuestImages, netns: str, host: str) -> QemuDriver:
    auth = ServiceAuth.from_file(images.service_yaml)
    return QemuDriver(tmp_path / "instances", tmp_path / "cache", lambda: auth, netns=netns, kvm="auto",
                      power_off_timeout=20, tap_wait_timeout=5, host=host)


def test_live_migration_between_two_nodes(live: LiveCloud, guest_images: GuestImages, two_nodes: dict[str, str],
                                          tmp_path: Path) -> None:
    a = node(tmp_path, guest_images, two_nodes["a"], "node-a")
    b = node(tmp_path, guest_images, two_nodes["b"], "node-b")
    spec = make_spec(guest_images)
    iid = spec["id"]
    idir = InstanceDir(tmp_path / "instances" / iid)

    async def scenario() -> None:
        for driver in (a, b):
            await driver.init_host()
        await a.create(spec)
        await a.power_on(spec)
        await until(lambda: testguest.READY_MARK in console(a, iid), 90, "the guest to boot")
        assert await a.list_instances() == [iid] and await b.list_instances() == []
        assert (await b.get_info(iid)).exists is False  # the other node sees the files but does not hold them

        # Nobody listens there: the send fails and the guest runs on, still held by node a.
        with pytest.raises(DriverError) as err:
            await a.migrate_out(iid, f"tcp:{ADDRESSES['b']}:1", "node-b", 30)
        assert "failed" in str(err.value)
        assert (await a.get_info(iid)).power_state == RUNNING and await b.list_instances() == []

        uri = await b.prepare_incoming(spec, ADDRESSES["b"])
        assert uri.startswith(f"tcp:{ADDRESSES['b']}:")
        assert await b.prepare_incoming(spec, ADDRESSES["b"]) == uri  # asked again while it waits: same QEMU
        await a.migrate_out(iid, uri, "node-b", 120)
        assert await a.list_instances() == [] and (await a.get_info(iid)).exists is False
        assert await b.list_instances() == [iid] and (await b.get_info(iid)).power_state == RUNNING
        slot = next(s for s in idir.slots() if process.pid_of(s) is not None)
        assert slot.slot == 1 and process.pid_of(idir) is None  # node a's QEMU (slot 0) is gone
        pid = process.pid_of(slot)
        assert pid is not None and process.in_netns(pid, two_nodes["b"])
        # The same guest, not a new boot: it hears node b's power button and powers itself off.
        await b.power_off(iid, 30)
        assert (await b.get_info(iid)).power_state == SHUTDOWN
        text = console(b, iid)
        assert text.count(testguest.BOOT_MARK) == 1 and testguest.OFF_MARK in text, text[-2000:]
        # Node a removing "its" copy changes nothing: node b holds the files.
        await a.destroy(iid)
        assert idir.disk.exists()
        await b.destroy(iid)
        assert not idir.path.exists()
        for driver in (a, b):
            await driver.close(stop_guests=True)

    asyncio.run(scenario())
