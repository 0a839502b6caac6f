"""A real guest booted from a volume: the volume is made from the default image (an AMI) by the volume agent, QEMU
boots the AMI's kernel and ramdisk (named by the volume's image metadata) with the volume as its first disk,
and the console log shows the kernel's root on /dev/vda and the image's filesystem found there."""

from __future__ import annotations

from typing import Any

import openstack.connection
import pytest

from tests.e2e import guests
from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack.compute.agent import ComputeAgent

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]


def _volume_status(conn: openstack.connection.Connection, volume: Any, want: str, timeout: int = 180) -> Any:
    return conn.block_storage.wait_for_status(conn.block_storage.get_volume(volume), want, failures=["error"],
                                              interval=0.5, wait=timeout)


def _check_booted_from(cloud: LiveCloud, conn: openstack.connection.Connection, server: Any, volume_id: str) -> None:
    log = guests.wait_console(conn, server, "tinystack-init: boot finished")
    # The kernel's root is the first virtio disk, and the image's filesystem (now on the volume) is there.
    assert "root=/dev/vda" in log
    assert "tinystack-init: mounted /dev/vda on /home" in log
    # No root overlay: the instance directory names the volume it boots from instead.
    instances = cloud.agent(ComputeAgent, cloud.host).driver.instances_path / server.id
    assert not (instances / "disk").exists()
    assert (instances / "disk.root-volume").read_text() == volume_id


def test_guest_boots_from_a_volume_made_from_cirros(guest_cloud: LiveCloud) -> None:
    cloud = guest_cloud
    conn = cloud.conn("demo")
    image = conn.image.find_image("cirros-0.6.3-x86_64-uec", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    nets = [{"uuid": guests.network(conn, "private").id}]
    with guests.leftovers(conn) as made:
        vol = conn.block_storage.create_volume(image_id=image.id, size=1, name=guests.unique("bootvol"))
        made.add(lambda: (_volume_status(conn, vol, "available", 120),
                          conn.block_storage.delete_volume(vol, ignore_missing=True)))
        meta = _volume_status(conn, vol, "available").volume_image_metadata
        assert isinstance(meta, dict) and meta.get("kernel_id") and meta.get("ramdisk_id")

        # Both guests are created before either is waited for: their TCG boots overlap.
        vm_vol = made.server(conn.compute.create_server(
            name=guests.unique("vm-vol"), flavor_id=flavor.id, networks=nets,
            block_device_mapping=[{"uuid": vol.id, "source_type": "volume", "destination_type": "volume",
                                   "boot_index": 0, "delete_on_termination": False}]))
        # --boot-from-volume: the conductor has the volume made from the image, then boots from it.
        vm_bfv = made.server(conn.compute.create_server(
            name=guests.unique("vm-bfv"), flavor_id=flavor.id, networks=nets,
            block_device_mapping=[{"uuid": image.id, "source_type": "image", "destination_type": "volume",
                                   "volume_size": 1, "boot_index": 0, "delete_on_termination": True}]))
        vm_vol, vm_bfv = guests.active(conn, vm_vol), guests.active(conn, vm_bfv)
        _volume_status(conn, vol, "in-use")
        [attached] = conn.compute.volume_attachments(vm_bfv)
        assert attached.device == "/dev/vda"
        _check_booted_from(cloud, conn, vm_vol, vol.id)
        _check_booted_from(cloud, conn, vm_bfv, attached.volume_id)

        for server in (vm_vol, vm_bfv):
            conn.compute.delete_server(server)
        for server in (vm_vol, vm_bfv):
            conn.compute.wait_for_delete(server, interval=0.5, wait=120)
        _volume_status(conn, vol, "available")
        # --delete-on-termination: the volume made at create goes with the server.
        wait_for(lambda: conn.block_storage.find_volume(attached.volume_id, ignore_missing=True) is None, 60,
                 "the --delete-on-termination volume to be deleted", interval=0.5)
        conn.block_storage.delete_volume(vol)
