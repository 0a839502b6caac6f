"""A volume on a real guest: attached by QMP hotplug while it runs, seen by the guest as a new virtio disk of
the volume's size with the volume's serial, kept across stop and start, detached (the guest acknowledges the
unplug) and gone; counted over ssh with ``lsblk -lb --nodeps`` as Tempest counts disks."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.drivers.qemu import QemuDriver

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]

GiB = 1024**3


def _ssh(cloud: LiveCloud, key: Path, ip: str, command: str, attempts: int = 3) -> subprocess.CompletedProcess[str]:
    """Run a (read-only) command in the guest; a session that hangs (seen now and then with a TCG guest on a
    loaded machine, before any volume is involved) is tried again."""
    for attempt in range(attempts):
        try:
            return subprocess.run(["ip", "netns", "exec", cloud.external_netns, "ssh", "-i", str(key),
                                   "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                   "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5",
                                   "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR", f"cirros@{ip}", command],
                                  capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _wait_ssh(cloud: LiveCloud, key: Path, ip: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while _ssh(cloud, key, ip, "true").returncode != 0:
        assert time.monotonic() < deadline, f"{ip} never answered ssh"
        time.sleep(2)


def _disks(cloud: LiveCloud, key: Path, ip: str) -> dict[str, int]:
    """Disk name → size in bytes, parsed the way Tempest's remote_client parses ``lsblk -lb --nodeps``."""
    out = _ssh(cloud, key, ip, "lsblk -lb --nodeps")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    pos = lines[0].find("TYPE")
    assert pos > 0, out.stdout
    return {line.split()[0]: int(line.split()[3]) for line in lines[1:] if line[pos:pos + 4] == "disk"}


def _volume_status(cloud: LiveCloud, name: str, want: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        vol = cloud.cli_json("volume", "show", name, cloud="demo")
        if vol["status"] == want:
            return vol  # type: ignore[no-any-return]
        assert vol["status"] != "error" and time.monotonic() < deadline, f"volume {name} is {vol['status']}"
        time.sleep(1)


def _until(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(1)


def test_hotplug_attach_and_detach(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path / "state", compute__driver="qemu", guest__auto_build="true")
    try:
        cloud.wait_for_default_image()
        run = cloud.cli
        key = tmp_path / "k.pem"
        key.write_text(run("keypair", "create", "k", cloud="demo").stdout)
        key.chmod(0o600)
        run("security", "group", "create", "ssh", cloud="demo")
        run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "ssh", cloud="demo")
        server = cloud.cli_json("server", "create", "--image", "cirros-tiny", "--flavor", "m1.tiny", "--network",
                                "private", "--security-group", "ssh", "--key-name", "k", "--wait", "vm1",
                                cloud="demo")
        assert server["status"] == "ACTIVE"
        fip = cloud.cli_json("floating", "ip", "create", "public", cloud="demo")["floating_ip_address"]
        run("server", "add", "floating", "ip", "vm1", fip, cloud="demo")
        _wait_ssh(cloud, key, fip)
        before = _disks(cloud, key, fip)

        vol = cloud.cli_json("volume", "create", "--size", "1", "vol1", cloud="demo")
        _volume_status(cloud, "vol1", "available")
        run("server", "add", "volume", "vm1", "vol1", cloud="demo")
        _volume_status(cloud, "vol1", "in-use")
        [att] = cloud.cli_json("server", "volume", "list", "vm1", cloud="demo")
        assert att["Volume ID"] == vol["id"]
        _until("the guest never saw the hot-plugged disk", lambda: len(_disks(cloud, key, fip)) == len(before) + 1)
        after = _disks(cloud, key, fip)
        [new] = set(after) - set(before)
        assert after[new] == GiB and new == att["Device"].removeprefix("/dev/")
        serial = _ssh(cloud, key, fip, f"cat /sys/block/{new}/serial").stdout.strip()
        assert serial == vol["id"][:20]
        # A driver that knows nothing (as after an agent restart) finds the volume by asking QEMU.
        running = cloud.agent(ComputeAgent, cloud.host).driver
        fresh = QemuDriver(running.instances_path, tmp_path / "cache", running._auth, netns=running.netns,
                           host=running.host)
        assert cloud.call(fresh.attached_volumes(server["id"])) == [vol["id"]]

        # Stop and start (Tempest's test_attach_detach_volume): the next boot has the volume on its command line.
        run("server", "stop", "vm1", cloud="demo")
        _until("vm1 never stopped", lambda: cloud.cli_json("server", "show", "vm1", cloud="demo")["status"] == "SHUTOFF")
        run("server", "start", "vm1", cloud="demo")
        _until("vm1 never started", lambda: cloud.cli_json("server", "show", "vm1", cloud="demo")["status"] == "ACTIVE")
        _wait_ssh(cloud, key, fip)
        assert _disks(cloud, key, fip) == after

        run("server", "remove", "volume", "vm1", "vol1", cloud="demo")
        _volume_status(cloud, "vol1", "available")
        assert cloud.cli_json("server", "volume", "list", "vm1", cloud="demo") == []
        assert _disks(cloud, key, fip) == before

        run("server", "delete", "--wait", "vm1", cloud="demo")
        run("volume", "delete", "vol1", cloud="demo")
    finally:
        cloud.stop()
