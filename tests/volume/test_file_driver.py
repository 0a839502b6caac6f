"""The file volume driver on real files in tmp_path; image transfers go through the live cloud's image API."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compute.agent.test_svcauth import service_yaml
from tests.livecloud import LiveCloud
from tests.volume.files import read_at, write_at
from tinystack.core.bus import InProcessBus
from tinystack.core.svcauth import ServiceAuth
from tinystack.volume.agent import VolumeAgent
from tinystack.volume.drivers.base import DriverError, GiB
from tinystack.volume.drivers.file import FileDriver

pytestmark = pytest.mark.api

MiB = 1024**2
VOL, VOL2, SNAP = "11111111-aaaa-4bbb-8ccc-000000000001", "11111111-aaaa-4bbb-8ccc-000000000002", \
    "22222222-aaaa-4bbb-8ccc-000000000001"


def _no_auth() -> ServiceAuth:
    raise AssertionError("this test does not reach the image API")


def driver(root: Path, auth: Callable[[], ServiceAuth] = _no_auth, host: str = "vol-a") -> FileDriver:
    d = FileDriver(root, auth, host, image_timeout=120)
    asyncio.run(d.init_host())
    return d


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def test_blank_volume_is_sparse_and_private(tmp_path: Path) -> None:
    root = tmp_path / "volumes"
    d = driver(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    asyncio.run(d.create_volume(VOL, 1, {"type": "blank"}))
    path = Path(d.volume_path(VOL))
    assert path == root / f"volume-{VOL}"
    assert path.stat().st_size == GiB
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert allocated(path) < MiB  # sparse
    assert asyncio.run(d.volume_size(VOL)) == GiB
    assert asyncio.run(d.volume_size(VOL2)) is None
    # An existing volume is never rewritten from its source.
    write_at(path, 4096, b"keep me")
    asyncio.run(d.create_volume(VOL, 1, {"type": "blank"}))
    assert read_at(path, 4096, 7) == b"keep me"


def test_clone_snapshot_extend_and_list(tmp_path: Path) -> None:
    d = driver(tmp_path)
    asyncio.run(d.create_volume(VOL, 1, {"type": "blank"}))
    vol = Path(d.volume_path(VOL))
    write_at(vol, 100 * MiB, b"first")

    asyncio.run(d.create_snapshot(SNAP, VOL))
    snap = tmp_path / f"snapshot-{SNAP}"
    assert asyncio.run(d.snapshot_size(SNAP)) == GiB
    assert stat.S_IMODE(snap.stat().st_mode) == 0o600
    assert allocated(snap) < 2 * MiB  # the copy keeps the holes
    write_at(vol, 100 * MiB, b"later")
    assert read_at(snap, 100 * MiB, 5) == b"first"  # a copy as it was, not a view

    asyncio.run(d.create_volume(VOL2, 2, {"type": "snapshot", "id": SNAP}))
    clone = Path(d.volume_path(VOL2))
    assert clone.stat().st_size == 2 * GiB
    assert read_at(clone, 100 * MiB, 5) == b"first"
    assert allocated(clone) < 2 * MiB

    third = "11111111-aaaa-4bbb-8ccc-000000000003"
    asyncio.run(d.create_volume(third, 1, {"type": "volume", "id": VOL}))
    assert read_at(Path(d.volume_path(third)), 100 * MiB, 5) == b"later"

    asyncio.run(d.extend_volume(VOL, 3))
    assert vol.stat().st_size == 3 * GiB
    assert read_at(vol, 100 * MiB, 5) == b"later"
    asyncio.run(d.extend_volume(VOL, 2))  # never shrinks
    assert vol.stat().st_size == 3 * GiB

    # A source larger than the new volume cannot be copied into it.
    with pytest.raises(DriverError, match="doesn't fit") as err:
        asyncio.run(d.create_volume("11111111-aaaa-4bbb-8ccc-000000000004", 2, {"type": "volume", "id": VOL}))
    assert err.value.permanent
    # A source that does not exist (yet) is worth another try.
    with pytest.raises(DriverError, match="not found") as err:
        asyncio.run(d.create_volume("11111111-aaaa-4bbb-8ccc-000000000005", 1, {"type": "volume", "id": "nope"}))
    assert not err.value.permanent

    assert asyncio.run(d.list_volumes()) == sorted([VOL, VOL2, third])
    assert asyncio.run(d.list_snapshots()) == [SNAP]
    assert not list(tmp_path.glob(".part-*"))

    asyncio.run(d.delete_volume(VOL2))
    asyncio.run(d.delete_volume(VOL2))  # already gone: fine
    asyncio.run(d.delete_snapshot(SNAP))
    asyncio.run(d.delete_snapshot(SNAP))
    assert asyncio.run(d.list_volumes()) == sorted([VOL, third])
    assert asyncio.run(d.list_snapshots()) == []
    cap = asyncio.run(d.capacity())
    assert cap.capacity_gb >= cap.free_gb >= 0


def test_crash_leftovers_are_removed_at_start_and_never_listed(tmp_path: Path) -> None:
    d = driver(tmp_path)
    asyncio.run(d.create_volume(VOL, 1, {"type": "blank"}))
    leftover = tmp_path / f".part-volume-{VOL2}"
    leftover.write_bytes(b"half a copy")
    (tmp_path / f".part-image-{VOL2}").write_bytes(b"half a download")
    assert asyncio.run(d.list_volumes()) == [VOL]
    assert asyncio.run(d.volume_size(VOL2)) is None
    driver(tmp_path)  # the agent starting again
    assert not list(tmp_path.glob(".part-*"))
    assert asyncio.run(d.list_volumes()) == [VOL]


def test_another_node_never_lists_or_removes_the_owners_files(tmp_path: Path) -> None:
    driver(tmp_path, host="vol-a")
    assert (tmp_path / ".host").read_text().strip() == "vol-a"
    owner = driver(tmp_path, host="vol-a")
    asyncio.run(owner.create_volume(VOL, 1, {"type": "blank"}))
    (tmp_path / f".part-volume-{VOL2}").write_bytes(b"being copied by vol-a")
    other = driver(tmp_path, host="vol-b")
    assert not other.owner
    assert asyncio.run(other.list_volumes()) == []  # so a sync sent to it removes nothing
    assert (tmp_path / f".part-volume-{VOL2}").exists()
    assert asyncio.run(owner.list_volumes()) == [VOL]


def test_ids_that_are_not_plain_names_are_refused(tmp_path: Path) -> None:
    d = driver(tmp_path)
    with pytest.raises(DriverError, match="invalid volume id") as err:
        asyncio.run(d.create_volume("../etc", 1, {"type": "blank"}))
    assert err.value.permanent
    assert not (tmp_path.parent / "etc").exists()


def test_the_agent_on_real_files_keeps_them_when_it_stops(tmp_path: Path) -> None:
    root = tmp_path / "volumes"

    async def scenario() -> list[dict[str, Any]]:
        bus = InProcessBus()
        seen: list[dict[str, Any]] = []

        async def collect(msg: dict[str, Any]) -> None:
            seen.append(msg)

        bus.subscribe("status.volume", collect)
        agent = VolumeAgent(bus, "vol-a", FileDriver(root, _no_auth, "vol-a"), tmp_path / "records",
                            heartbeat_interval=3600, resync_interval=3600)
        await agent.start()
        topic = "agent.volume.vol-a"
        await bus.publish(topic, {"op": "put", "type": "snapshot", "id": SNAP, "generation": 1,
                                  "spec": {"volume_id": VOL}})
        await bus.publish(topic, {"op": "put", "type": "volume", "id": VOL, "generation": 1,
                                  "spec": {"size_gb": 1, "source": {"type": "blank"}, "upload": None}})
        for _ in range(50):
            await bus.drain()
            await agent.wait_idle()
            if len(seen) == 2:
                break
            await asyncio.sleep(0.05)
        await bus.publish(topic, {"op": "delete", "type": "snapshot", "id": SNAP, "generation": 2})
        await bus.drain()
        await agent.wait_idle()
        await bus.drain()
        await agent.stop(cleanup=True)
        await bus.close()
        return seen

    seen = asyncio.run(scenario())
    assert [(m["type"], m["status"]) for m in seen] == [
        ("volume", {"state": "ready", "size_gb": 1, "upload_seq": 0}),
        ("snapshot", {"state": "ready", "size_gb": 1}),
        ("snapshot", {"state": "deleted"})]
    assert (root / f"volume-{VOL}").stat().st_size == GiB  # volumes are data: stop(cleanup=True) keeps them
    assert not (root / f"snapshot-{SNAP}").exists()


# -- through the image API --------------------------------------------------------------------------------


def _image(live: LiveCloud, name: str, disk_format: str, path: Path | None) -> str:
    conn = live.conn("admin")
    image = conn.image.create_image(name=name, disk_format=disk_format, container_format="bare",
                                    visibility="private")
    if path is not None:
        with open(path, "rb") as f:
            resp = requests.put(f"{live.url('image')}/v2/images/{image.id}/file", data=f, timeout=60,
                                headers={"X-Auth-Token": str(conn.auth_token),
                                         "Content-Type": "application/octet-stream"})
        assert resp.status_code == 204, resp.text
    return str(image.id)


def _qcow2(tmp_path: Path, name: str, size: str, marker: bytes, offset: int) -> Path:
    raw = tmp_path / f"{name}.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(raw), size], check=True)
    write_at(raw, offset, marker)
    out = tmp_path / f"{name}.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(out)], check=True)
    raw.unlink()
    return out


def test_volume_from_a_qcow2_image_and_upload_back(live: LiveCloud, tmp_path: Path) -> None:
    creds = service_yaml(live, tmp_path / "service.yaml")
    auth = ServiceAuth.from_file(creds)
    root = tmp_path / "volumes"
    d = driver(root, lambda: auth)
    src = _qcow2(tmp_path, "small", "64M", b"from the image", 5 * MiB)
    image_id = _image(live, "vol-src", "qcow2", src)

    asyncio.run(d.create_volume(VOL, 1, {"type": "image", "id": image_id, "disk_format": "qcow2"}))
    vol = Path(d.volume_path(VOL))
    assert vol.stat().st_size == GiB
    assert read_at(vol, 5 * MiB, 14) == b"from the image"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output", "json", str(vol)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "raw"
    assert allocated(vol) < 8 * MiB
    assert not list(root.glob(".part-*"))  # the download is gone too

    # Without disk_format in the document the driver asks the image API.
    asyncio.run(d.create_volume(VOL2, 1, {"type": "image", "id": image_id}))
    assert read_at(Path(d.volume_path(VOL2)), 5 * MiB, 14) == b"from the image"

    # An image whose virtual size exceeds the volume is a permanent error, in Cinder's words.
    big = _image(live, "vol-big", "qcow2", _qcow2(tmp_path, "big", "1536M", b"x", 0))
    with pytest.raises(DriverError) as err:
        asyncio.run(d.create_volume("11111111-aaaa-4bbb-8ccc-000000000009", 1, {"type": "image", "id": big,
                                                                              "disk_format": "qcow2"}))
    assert err.value.permanent
    assert str(err.value) == "Image virtual size is 2GB and doesn't fit in a volume of size 1GB."
    assert asyncio.run(d.list_volumes()) == sorted([VOL, VOL2])
    # An image without data, and one that does not exist.
    empty = _image(live, "vol-empty", "raw", None)
    with pytest.raises(DriverError, match="no data") as err:
        asyncio.run(d.create_volume("11111111-aaaa-4bbb-8ccc-00000000000a", 1, {"type": "image", "id": empty,
                                                                              "disk_format": "raw"}))
    assert err.value.permanent
    with pytest.raises(DriverError, match="not found") as err:
        asyncio.run(d.create_volume("11111111-aaaa-4bbb-8ccc-00000000000b", 1,
                                    {"type": "image", "id": "33333333-aaaa-4bbb-8ccc-000000000000",
                                     "disk_format": "raw"}))
    assert err.value.permanent

    # Upload as qcow2 into an image created for it, then read it back through the API.
    target = _image(live, "vol-upload", "qcow2", None)
    asyncio.run(d.upload_volume(VOL, target, "qcow2"))
    asyncio.run(d.upload_volume(VOL, target, "qcow2"))  # again (a retry): the image already has data, done
    conn = live.conn("admin")
    got = tmp_path / "got.qcow2"
    resp = requests.get(f"{live.url('image')}/v2/images/{target}/file", timeout=60,
                        headers={"X-Auth-Token": str(conn.auth_token)})
    assert resp.status_code == 200
    got.write_bytes(resp.content)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output", "json", "-f", "qcow2", str(got)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["virtual-size"] == GiB
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(got), str(back)], check=True)
    assert read_at(back, 5 * MiB, 14) == b"from the image"
    assert conn.image.get_image(target).status == "active"
    assert not list(root.glob(".part-*"))
