"""A volume on a real guest: attached by QMP hotplug while it runs, seen by the guest as a new virtio disk of
the volume's size with the volume's serial, extended in use (the guest sees the new size), kept across stop and
start, detached (the guest acknowledges the
unplug) and gone; counted over ssh with ``lsblk -lb --nodeps`` as Tempest counts disks.

The guest is the session's shared one (tests/e2e/conftest.py): it has a config drive, so the volume is its third
disk, which also checks that the device name the API gives counts the config drive as the guest does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e import guests
from tests.waiting import wait_for
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.drivers.qemu import QemuDriver

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]

GiB = 1024**3


def _disks(guest: guests.SshGuest) -> dict[str, int]:
    """Disk name → size in bytes, parsed the way Tempest's remote_client parses ``lsblk -lb --nodeps``."""
    out = guest.ssh("lsblk -lb --nodeps")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    pos = lines[0].find("TYPE")
    assert pos > 0, out.stdout
    return {line.split()[0]: int(line.split()[3]) for line in lines[1:] if line[pos:pos + 4] == "disk"}


def _volume_status(guest: guests.SshGuest, volume: Any, want: str, timeout: float = 120) -> Any:
    return guest.conn.block_storage.wait_for_status(guest.conn.block_storage.get_volume(volume), want,
                                                    failures=["error"], interval=0.5, wait=int(timeout))


def _server_status(guest: guests.SshGuest, want: str, timeout: float = 120) -> Any:
    return guest.conn.compute.wait_for_server(guest.conn.compute.get_server(guest.server), status=want,
                                              failures=["ERROR"], interval=0.5, wait=timeout)


def _running(guest: guests.SshGuest) -> None:
    if guest.conn.compute.get_server(guest.server).status == "SHUTOFF":
        guest.conn.compute.start_server(guest.server)
    _server_status(guest, "ACTIVE")
    guest.wait_ssh()


def test_hotplug_attach_and_detach(ssh_guest: guests.SshGuest, tmp_path: Path) -> None:
    guest, conn = ssh_guest, ssh_guest.conn
    before = _disks(guest)
    with guests.leftovers(conn) as made:
        # Undone last to first should the test fail: the shared guest runs again, without the volume.
        made.add(lambda: _running(guest))
        vol = conn.block_storage.create_volume(size=1, name=guests.unique("vol"))
        made.add(lambda: (_volume_status(guest, vol, "available", 60),
                          conn.block_storage.delete_volume(vol, ignore_missing=True)))
        made.add(lambda: conn.compute.delete_volume_attachment(guest.server, vol, ignore_missing=True))
        _volume_status(guest, vol, "available")
        conn.compute.create_volume_attachment(guest.server, volume_id=vol.id)
        _volume_status(guest, vol, "in-use")
        [att] = conn.compute.volume_attachments(guest.server)
        assert att.volume_id == vol.id
        wait_for(lambda: len(_disks(guest)) == len(before) + 1, 60, "the guest to see the hot-plugged disk")
        after = _disks(guest)
        [new] = set(after) - set(before)
        assert after[new] == GiB and new == att.device.removeprefix("/dev/")
        serial = guest.ssh(f"cat /sys/block/{new}/serial").stdout.strip()
        assert serial == vol.id[:20]
        # A driver that knows nothing (as after an agent restart) finds the volume by asking QEMU.
        cloud = guest.cloud
        running = cloud.agent(ComputeAgent, cloud.host).driver
        fresh = QemuDriver(running.instances_path, tmp_path / "cache", running._auth, netns=running.netns,
                           host=running.host)
        assert cloud.call(fresh.attached_volumes(guest.server.id)) == [vol.id]

        # Extended in use (Cinder 3.42): the volume node grows the file, block storage tells compute
        # (volume-extended) and the agent grows the disk under the running guest, which sees the new size.
        r = conn.block_storage.post(f"/volumes/{vol.id}/action", json={"os-extend": {"new_size": 2}},
                                    headers={"OpenStack-API-Version": "volume 3.42"})
        assert r.status_code == 202, r.text
        _volume_status(guest, vol, "in-use")
        assert conn.block_storage.get_volume(vol).size == 2

        def sectors() -> int:
            return int(guest.ssh(f"cat /sys/block/{new}/size").stdout.strip() or 0)

        wait_for(lambda: sectors() * 512 == 2 * GiB, 120, "the guest to see the extended disk")
        after = _disks(guest)
        assert after[new] == 2 * GiB

        # Stop and start (Tempest's test_attach_detach_volume): the next boot has the volume on its command line.
        conn.compute.stop_server(guest.server)
        _server_status(guest, "SHUTOFF")
        conn.compute.start_server(guest.server)
        _server_status(guest, "ACTIVE")
        guest.wait_ssh()
        assert _disks(guest) == after

        conn.compute.delete_volume_attachment(guest.server, vol)
        _volume_status(guest, vol, "available")
        assert list(conn.compute.volume_attachments(guest.server)) == []
        assert _disks(guest) == before

        conn.block_storage.delete_volume(vol)
        conn.block_storage.wait_for_delete(vol, interval=0.5, wait=60)
