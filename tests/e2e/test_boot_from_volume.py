"""A real guest booted from a volume: the volume is made from cirros-tiny (an AMI) by the volume agent, QEMU
boots the AMI's kernel and ramdisk (named by the volume's image metadata) with the volume as its first disk,
and the console log shows the kernel's root on /dev/vda and the image's filesystem found there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]


def _volume_status(cloud: LiveCloud, name: str, want: str, timeout: float = 180) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        vol = cloud.cli_json("volume", "show", name, cloud="demo")
        if vol["status"] == want:
            return vol  # type: ignore[no-any-return]
        assert vol["status"] != "error" and time.monotonic() < deadline, f"volume {name} is {vol['status']}"
        time.sleep(1)


def _console_until(cloud: LiveCloud, server: str, text: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = cloud.cli("console", "log", "show", server, cloud="demo").stdout
        if text in log:
            return log
        assert time.monotonic() < deadline, f"{server} never printed {text!r}; its console:\n{log[-3000:]}"
        time.sleep(2)


def _check_booted_from(cloud: LiveCloud, server: str, volume_id: str) -> None:
    log = _console_until(cloud, server, "tinystack-init: boot finished")
    # The kernel's root is the first virtio disk, and the image's filesystem (now on the volume) is there.
    assert "root=/dev/vda" in log
    assert "tinystack-init: mounted /dev/vda on /home" in log
    shown = cloud.cli_json("server", "show", server, cloud="demo")
    # No root overlay: the instance directory names the volume it boots from instead.
    instances = cloud.agent(ComputeAgent, cloud.host).driver.instances_path / shown["id"]
    assert not (instances / "disk").exists()
    assert (instances / "disk.root-volume").read_text() == volume_id


def test_guest_boots_from_a_volume_made_from_cirros(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path / "state", compute__driver="qemu", guest__auto_build="true")
    try:
        cloud.wait_for_default_image()
        run = cloud.cli
        vol = cloud.cli_json("volume", "create", "--image", "cirros-tiny", "--size", "1", "bootvol", cloud="demo")
        meta = _volume_status(cloud, "bootvol", "available")["volume_image_metadata"]
        assert isinstance(meta, dict) and meta.get("kernel_id") and meta.get("ramdisk_id")

        server = cloud.cli_json("server", "create", "--volume", "bootvol", "--flavor", "m1.tiny", "--network",
                                "private", "--wait", "vm-vol", cloud="demo")
        assert server["status"] == "ACTIVE"
        _volume_status(cloud, "bootvol", "in-use")
        _check_booted_from(cloud, "vm-vol", str(vol["id"]))

        # --boot-from-volume: the conductor has the volume made from the image, then boots from it.
        server2 = cloud.cli_json("server", "create", "--image", "cirros-tiny", "--boot-from-volume", "1",
                                 "--delete-on-termination", "--flavor", "m1.tiny", "--network", "private", "--wait",
                                 "vm-bfv", cloud="demo")
        assert server2["status"] == "ACTIVE"
        [attached] = cloud.cli_json("server", "volume", "list", "vm-bfv", cloud="demo")
        assert attached["Device"] == "/dev/vda"
        _check_booted_from(cloud, "vm-bfv", str(attached["Volume ID"]))

        run("server", "delete", "--wait", "vm-vol", "vm-bfv", cloud="demo")
        _volume_status(cloud, "bootvol", "available")
        deadline = time.monotonic() + 60
        while attached["Volume ID"] in run("volume", "list", "-f", "value", "-c", "ID", cloud="demo").stdout:
            assert time.monotonic() < deadline, "the --delete-on-termination volume was not deleted"
            time.sleep(1)
        run("volume", "delete", "bootvol", cloud="demo")
    finally:
        cloud.stop()
