"""Fixtures for the QEMU driver tests: images in the live image service, service credentials, and a
test-made node namespace with taps (removed afterwards, with any QEMU left running in it)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.compute.agent import testguest
from tests.compute.agent.test_svcauth import service_yaml
from tests.livecloud import LiveCloud


@dataclass
class GuestImages:
    kernel_id: str
    ramdisk_id: str
    root_id: str
    root_virtual_size: int
    service_yaml: Path


@pytest.fixture(scope="session")
def guest_images(live: LiveCloud, tmp_path_factory: pytest.TempPathFactory) -> GuestImages:
    kernel, initrd = testguest.build()
    work = tmp_path_factory.mktemp("guestimg")
    root = work / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(root), "64M"], check=True)
    conn = live.conn("admin")
    ids = []
    for name, path, fmt in (("tsguest-kernel", kernel, "aki"), ("tsguest-initrd", initrd, "ari"),
                            ("tsguest-root", root, "qcow2")):
        image = conn.image.create_image(name=name, disk_format=fmt, container_format="bare", visibility="private")
        ids.append(_upload(live, image.id, path))
    return GuestImages(ids[0], ids[1], ids[2], 64 << 20, service_yaml(live, work / "service.yaml"))


def _upload(live: LiveCloud, image_id: str, path: Path) -> str:
    conn = live.conn("admin")
    with open(path, "rb") as f:
        resp = requests.put(f"{live.url('image')}/v2/images/{image_id}/file", data=f, timeout=60,
                            headers={"X-Auth-Token": str(conn.auth_token), "Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    return image_id


@dataclass
class NodeNs:
    name: str

    def add_tap(self, port_id: str) -> str:
        tap = f"tap{port_id[:11]}"
        subprocess.run(["ip", "-n", self.name, "tuntap", "add", "dev", tap, "mode", "tap"], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", tap, "up"], check=True)
        return tap


@pytest.fixture
def node_ns(tmp_path: Path) -> Iterator[NodeNs]:
    """A namespace standing in for the network agent's ``tsnode-<host>``; named uniquely, removed after."""
    name = f"tsct-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield NodeNs(name)
    finally:
        kill_guests(tmp_path)
        subprocess.run(["ip", "netns", "del", name], check=False)


def kill_guests(root: Path) -> None:
    """SIGKILL any QEMU whose pidfile lies under ``root`` and whose cmdline names that instance."""
    for pidfile in root.rglob("qemu*.pid"):  # qemu.pid, and qemu-1.pid of a second slot (live migration)
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if f"instance-{pidfile.parent.name}".encode() in cmdline:
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
