"""Boot from volume (block_device_mapping_v2 volume sources) against a live cloud with the fake compute driver
and the real file volume driver: openstackclient as a user runs it, raw HTTP for Nova's exact bodies and refusals,
and the volumes' Cinder statuses through every step."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compute.test_servers import Nova
from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.drivers.fake import FakeGuest
from tinystack.compute.drivers.qemu import process
from tinystack.compute.drivers.qemu import volumes as qvol
from tinystack.compute.drivers.qemu.layout import InstanceDir

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def demo(live: LiveCloud) -> Nova:
    return Nova(live, "demo")


@pytest.fixture(scope="module")
def ami(live: LiveCloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An AMI like cirros-0.6.3-x86_64-uec: a raw root image whose properties name a kernel (aki) and a ramdisk (ari)."""
    tmp = tmp_path_factory.mktemp("ami")
    ids: dict[str, str] = {}
    for kind, fmt in (("kernel", "aki"), ("ramdisk", "ari")):
        path = tmp / kind
        path.write_bytes(b"\x7f" * 1024)
        ids[kind] = live.cli_json("image", "create", "--public", "--disk-format", fmt, "--container-format", fmt,
                                  "--file", str(path), f"bfv-{kind}")["id"]
    root = tmp / "root"
    root.write_bytes(b"\0" * 65536)
    ids["image"] = live.cli_json("image", "create", "--public", "--disk-format", "ami", "--container-format", "ami",
                                 "--file", str(root), "--property", f"kernel_id={ids['kernel']}", "--property",
                                 f"ramdisk_id={ids['ramdisk']}", "--property", "os_distro=cirros",
                                 "bfv-ami")["id"]
    return ids


def volume(live: LiveCloud, volume_id: str, want: str | None = None, timeout: float = 60) -> Any:
    """The volume as Cinder shows it; with ``want``, once it has that status (or gone, for ``deleted``)."""
    conn = live.conn("demo")
    deadline = time.monotonic() + timeout
    while True:
        vol = conn.block_storage.find_volume(volume_id, ignore_missing=True)
        status = vol.status if vol is not None else "deleted"
        if want is None or status == want:
            return vol
        assert time.monotonic() < deadline, f"volume {volume_id} is {status}, not {want}"
        time.sleep(0.1)


def bootable_volume(live: LiveCloud, image: str, name: str, size: int = 1) -> str:
    vid = str(live.cli_json("volume", "create", "--image", image, "--size", str(size), name, cloud="demo")["id"])
    volume(live, vid, "available")
    return vid


def server(live: LiveCloud, sid: str, status: str, timeout: float = 60) -> Any:
    conn = live.conn("demo")
    return conn.compute.wait_for_server(conn.compute.get_server(sid), status=status, wait=timeout, interval=0.1,
                                        failures=[] if status == "ERROR" else ["ERROR"])


def guest(live: LiveCloud, fake_host: str, sid: str) -> FakeGuest:
    guest: FakeGuest = live.agent(ComputeAgent, fake_host).driver.storage.guests[sid]
    return guest


def allocations(live: LiveCloud, consumer: str) -> dict[str, int]:
    admin = live.conn("admin")
    r = requests.get(f"{live.url('placement')}/allocations/{consumer}", timeout=30,
                     headers={"X-Auth-Token": str(admin.auth_token), "OpenStack-API-Version": "placement 1.28"})
    assert r.status_code == 200, r.text
    out: dict[str, int] = {}
    for alloc in r.json()["allocations"].values():
        for rc, n in alloc["resources"].items():
            out[rc] = out.get(rc, 0) + n
    return out


def create(demo: Nova, name: str, bdms: list[dict[str, Any]], **extra: Any) -> requests.Response:
    body = {"server": {"name": name, "flavorRef": "1", "networks": "none", "imageRef": "",
                       "block_device_mapping_v2": bdms, **extra}}
    return demo("POST", "/servers", json=body)


def delete_server(live: LiveCloud, sid: str) -> None:
    live.cli("server", "delete", "--wait", sid, cloud="demo")


@pytest.fixture
def cleanup(live: LiveCloud) -> Iterator[list[str]]:
    """Volumes a test leaves behind (deleted afterwards, whatever state they are in)."""
    made: list[str] = []
    yield made
    conn = live.conn("admin")
    for vid in made:
        vol = conn.block_storage.find_volume(vid, ignore_missing=True, all_projects=True)
        if vol is not None:
            conn.block_storage.delete_volume(vol.id, force=True, ignore_missing=True)


def test_boot_from_existing_volume(live: LiveCloud, fake_host: str, ami: dict[str, str], demo: Nova,
                                   cleanup: list[str]) -> None:
    vid = bootable_volume(live, ami["image"], "bfv-root")
    cleanup.append(vid)
    meta = volume(live, vid).volume_image_metadata
    assert meta["kernel_id"] == ami["kernel"] and meta["ramdisk_id"] == ami["ramdisk"]

    shown = live.cli_json("server", "create", "--volume", "bfv-root", "--flavor", "m1.tiny", "--network", "private",
                          "--wait", "bfv-vm", cloud="demo")
    sid = shown["id"]
    assert shown["status"] == "ACTIVE"
    view = demo("GET", f"/servers/{sid}").json()["server"]
    assert view["image"] == ""
    assert view["os-extended-volumes:volumes_attached"] == [{"id": vid, "delete_on_termination": False}]

    vol = volume(live, vid, "in-use")
    assert [(a["server_id"], a["device"]) for a in vol.attachments] == [(sid, "/dev/vda")]
    listed = demo("GET", f"/servers/{sid}/os-volume_attachments").json()["volumeAttachments"]
    assert [(a["volumeId"], a["device"]) for a in listed] == [(vid, "/dev/vda")]

    # The guest boots from the volume, with the kernel and ramdisk its image metadata names.
    g = guest(live, fake_host, sid)
    assert g.root == f"volume:{vid}" and g.volumes == [vid]
    assert g.spec["image"]["id"] == ami["image"]
    assert (g.spec["kernel_image_id"], g.spec["ramdisk_image_id"]) == (ami["kernel"], ami["ramdisk"])
    assert [(v["volume_id"], v["boot_index"], v["device"]) for v in g.spec["volumes"]] == [(vid, 0, "/dev/vda")]

    # m1.tiny has a 1 GiB root disk; a volume-backed server claims none of it.
    used = allocations(live, sid)
    assert used["VCPU"] == 1 and used["MEMORY_MB"] == 512 and "DISK_GB" not in used

    r = demo("DELETE", f"/servers/{sid}/os-volume_attachments/{vid}")
    assert r.status_code == 400 and "Can't detach root device volume" in r.text
    r = demo("POST", f"/servers/{sid}/action", json={"rebuild": {"imageRef": ami["image"]}})
    assert r.status_code == 400 and "volume-backed" in r.text
    r = demo("POST", f"/servers/{sid}/action", json={"rescue": {}})
    assert r.status_code == 400

    # The volume is in use now: another server cannot boot from it.
    r = create(demo, "bfv-second", [{"uuid": vid, "source_type": "volume", "destination_type": "volume",
                                     "boot_index": 0}])
    assert r.status_code == 400 and "status must be 'available'" in r.text and "in-use" in r.text

    delete_server(live, sid)
    vol = volume(live, vid, "available")
    assert vol.attachments == []


def test_boot_from_image_to_volume(live: LiveCloud, fake_host: str, ami: dict[str, str], demo: Nova,
                                   cleanup: list[str]) -> None:
    shown = live.cli_json("server", "create", "--image", "bfv-ami", "--boot-from-volume", "2", "--flavor",
                          "m1.tiny", "--network", "private", "--wait", "bfv-img", cloud="demo")
    sid = shown["id"]
    assert shown["status"] == "ACTIVE"
    view = demo("GET", f"/servers/{sid}").json()["server"]
    assert view["image"] == ""
    [attached] = view["os-extended-volumes:volumes_attached"]
    vid = attached["id"]
    cleanup.append(vid)
    assert attached["delete_on_termination"] is False  # openstackclient sends false without --delete-on-termination

    vol = volume(live, vid, "in-use")
    assert vol.size == 2 and vol.is_bootable
    assert vol.volume_image_metadata["image_id"] == ami["image"]
    assert vol.volume_image_metadata["kernel_id"] == ami["kernel"]
    assert [(a["server_id"], a["device"]) for a in vol.attachments] == [(sid, "/dev/vda")]
    g = guest(live, fake_host, sid)
    assert g.root == f"volume:{vid}"
    assert (g.spec["kernel_image_id"], g.spec["ramdisk_image_id"]) == (ami["kernel"], ami["ramdisk"])

    # createImage of a volume-backed server: the agent uploads the root volume as the image's data.
    image = live.cli_json("server", "image", "create", "--name", "bfv-snap", sid, cloud="demo")
    deadline = time.monotonic() + 30
    while image["id"] not in g.snapshots:
        assert time.monotonic() < deadline, "the snapshot was never taken"
        time.sleep(0.1)
    live.cli("image", "delete", image["id"], cloud="demo")

    delete_server(live, sid)
    assert volume(live, vid, "available").attachments == []

    # --delete-on-termination: the volume goes with the server.
    shown = live.cli_json("server", "create", "--image", "bfv-ami", "--boot-from-volume", "1",
                          "--delete-on-termination", "--flavor", "m1.tiny", "--network", "private", "--wait",
                          "bfv-img-dot", cloud="demo")
    view = demo("GET", f"/servers/{shown['id']}").json()["server"]
    [attached] = view["os-extended-volumes:volumes_attached"]
    assert attached["delete_on_termination"] is True
    cleanup.append(attached["id"])
    volume(live, attached["id"], "in-use")
    delete_server(live, shown["id"])
    volume(live, attached["id"], "deleted")


def test_image_to_volume_size_defaults(live: LiveCloud, fake_host: str, ami: dict[str, str], demo: Nova,
                                       cleanup: list[str]) -> None:
    """Without volume_size the volume is as large as the image needs, or as the flavor's root disk."""
    admin = live.conn("admin")
    flavor = admin.compute.create_flavor(name=f"bfv-{uuid.uuid4().hex[:6]}", ram=128, vcpus=1, disk=3)
    try:
        for flavor_ref, want in ((flavor.id, 3), ("1", 1)):
            r = create(demo, "bfv-size", [{"uuid": ami["image"], "source_type": "image",
                                           "destination_type": "volume", "boot_index": 0,
                                           "delete_on_termination": True}], flavorRef=flavor_ref)
            assert r.status_code == 202, r.text
            sid = r.json()["server"]["id"]
            server(live, sid, "ACTIVE")
            [bdm] = demo("GET", f"/servers/{sid}/os-volume_attachments").json()["volumeAttachments"]
            cleanup.append(bdm["volumeId"])
            assert volume(live, bdm["volumeId"], "in-use").size == want
            delete_server(live, sid)
            volume(live, bdm["volumeId"], "deleted")
    finally:
        admin.compute.delete_flavor(flavor)


def test_boot_from_snapshot(live: LiveCloud, fake_host: str, ami: dict[str, str], demo: Nova,
                            cleanup: list[str]) -> None:
    src = bootable_volume(live, ami["image"], "bfv-snap-src")
    cleanup.append(src)
    snap = live.cli_json("volume", "snapshot", "create", "--volume", src, "bfv-snap", cloud="demo")
    conn = live.conn("demo")
    conn.block_storage.wait_for_status(conn.block_storage.get_snapshot(snap["id"]), "available", wait=60,
                                       interval=0.2)
    try:
        shown = live.cli_json("server", "create", "--snapshot", "bfv-snap", "--flavor", "m1.tiny", "--network",
                              "private", "--wait", "bfv-from-snap", cloud="demo")
        sid = shown["id"]
        [attached] = demo("GET", f"/servers/{sid}").json()["server"]["os-extended-volumes:volumes_attached"]
        vid = attached["id"]
        cleanup.append(vid)
        vol = volume(live, vid, "in-use")
        assert vol.snapshot_id == snap["id"] and vol.size == 1 and vol.is_bootable
        g = guest(live, fake_host, sid)
        assert g.root == f"volume:{vid}" and g.spec["kernel_image_id"] == ami["kernel"]
        delete_server(live, sid)
        volume(live, vid, "available")
        live.cli("volume", "delete", vid, cloud="demo")
        volume(live, vid, "deleted")
    finally:
        live.cli("volume", "snapshot", "delete", snap["id"], cloud="demo")


def test_data_volumes_at_boot(live: LiveCloud, fake_host: str, image_id: str, demo: Nova,
                              cleanup: list[str]) -> None:
    """An image-backed server with a new blank volume and an existing one attached when it boots."""
    conn = live.conn("demo")
    data = conn.block_storage.create_volume(name="bfv-data", size=1)
    cleanup.append(data.id)
    volume(live, data.id, "available")
    shown = live.cli_json("server", "create", "--image", image_id, "--flavor", "m1.nano", "--network", "private",
                          "--block-device", "source_type=blank,destination_type=volume,volume_size=1,"
                          "delete_on_termination=true",
                          "--block-device", f"uuid={data.id},source_type=volume,destination_type=volume,boot_index=-1",
                          "--wait", "bfv-data-vm", cloud="demo")
    sid = shown["id"]
    view = demo("GET", f"/servers/{sid}").json()["server"]
    assert view["image"]["id"] == image_id
    attached = view["os-extended-volumes:volumes_attached"]
    assert len(attached) == 2 and attached[1] == {"id": data.id, "delete_on_termination": False}
    blank = attached[0]["id"]
    cleanup.append(blank)
    assert attached[0]["delete_on_termination"] is True
    devices = {a["volumeId"]: a["device"]
               for a in demo("GET", f"/servers/{sid}/os-volume_attachments").json()["volumeAttachments"]}
    assert devices == {blank: "/dev/vdb", data.id: "/dev/vdc"}
    assert volume(live, blank, "in-use").name == f"{sid}-blank-vol"
    volume(live, data.id, "in-use")
    g = guest(live, fake_host, sid)
    assert g.root == f"image:{image_id}" and sorted(g.volumes) == sorted([blank, data.id])
    # Volumes of an image-backed server are data volumes: they detach.
    live.cli("server", "remove", "volume", sid, data.id, cloud="demo")
    volume(live, data.id, "available")

    delete_server(live, sid)
    volume(live, blank, "deleted")
    assert volume(live, data.id, "available").attachments == []


def test_volume_that_fails_to_create_puts_server_in_error(live: LiveCloud, fake_host: str, demo: Nova,
                                                          tmp_path: Path, cleanup: list[str]) -> None:
    bad = tmp_path / "bad.qcow2"
    bad.write_bytes(b"this is not a qcow2 image" * 100)
    image = live.cli_json("image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file",
                          str(bad), "bfv-bad-image", cloud="demo")["id"]
    try:
        r = create(demo, "bfv-bad", [{"uuid": image, "source_type": "image", "destination_type": "volume",
                                      "boot_index": 0, "volume_size": 1}])
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        failed = server(live, sid, "ERROR")
        assert "did not finish being created" in failed.fault["message"]
        assert "status is error" in failed.fault["message"]
        vols = [v for v in live.conn("demo").block_storage.volumes() if v.volume_image_metadata
                and v.volume_image_metadata.get("image_id") == image]
        assert [v.status for v in vols] == ["error"]
        cleanup.extend(v.id for v in vols)
        delete_server(live, sid)
    finally:
        live.cli("image", "delete", image, cloud="demo")


@pytest.mark.parametrize("case", [
    "unknown-volume", "two-roots", "not-bootable", "blank-without-size", "blank-root", "image-too-small",
    "local-swap", "volume-many-servers", "unknown-snapshot", "bad-sequence",
])
def test_refusals_are_400_and_make_nothing(live: LiveCloud, fake_host: str, ami: dict[str, str], demo: Nova,
                                           cleanup: list[str], tmp_path: Path, case: str) -> None:
    conn = live.conn("demo")
    plain = conn.block_storage.create_volume(name="bfv-plain", size=1)
    cleanup.append(plain.id)
    volume(live, plain.id, "available")
    root = {"uuid": plain.id, "source_type": "volume", "destination_type": "volume", "boot_index": 0}
    image_root = {"uuid": ami["image"], "source_type": "image", "destination_type": "volume", "boot_index": 0,
                  "volume_size": 1}
    extra: dict[str, Any] = {}
    bdms, why = {
        "unknown-volume": ([{**root, "uuid": str(uuid.uuid4())}], "Block Device Mapping is Invalid"),
        "two-roots": ([image_root, {**image_root, "uuid": ami["kernel"]}], "Boot sequence"),
        "not-bootable": ([root], "is not bootable"),
        "blank-without-size": ([image_root, {"source_type": "blank", "destination_type": "volume",
                                             "boot_index": -1}], "need to have non-zero size"),
        "blank-root": ([{"source_type": "blank", "destination_type": "volume", "boot_index": 0,
                         "volume_size": 1}], "Block Device Mapping is Invalid"),
        "image-too-small": ([], "minimum size"),
        "local-swap": ([image_root, {"source_type": "blank", "destination_type": "local", "boot_index": -1,
                                     "volume_size": 1, "guest_format": "swap"}], "Block Device Mapping is Invalid"),
        "volume-many-servers": ([image_root, {**root, "boot_index": None}], "multiple instances"),
        "unknown-snapshot": ([{**root, "source_type": "snapshot", "uuid": str(uuid.uuid4())}],
                             "failed to get snapshot"),
        "bad-sequence": ([image_root, {**root, "boot_index": 2}], "Boot sequence"),
    }[case]
    if case == "image-too-small":
        data = tmp_path / "big"
        data.write_bytes(b"\0" * 4096)
        big = live.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                            "--min-disk", "2", "--file", str(data), "bfv-big", cloud="demo")["id"]
        bdms = [{**image_root, "uuid": big}]
    if case == "volume-many-servers":
        extra = {"min_count": 2, "max_count": 2}
    name = f"bfv-refused-{case}"
    try:
        r = create(demo, name, bdms, **extra)
    finally:
        if case == "image-too-small":
            live.cli("image", "delete", big, cloud="demo")
    assert r.status_code == 400, r.text
    assert why in r.json()["badRequest"]["message"]
    assert [s for s in conn.compute.servers() if s.name.startswith(name)] == []
    assert volume(live, plain.id).status == "available"
    names = [v.name for v in conn.block_storage.volumes()]
    assert not any(n and n.endswith("-blank-vol") for n in names)


def test_blank_volume_root_with_image_ref(live: LiveCloud, fake_host: str, ami: dict[str, str], demo: Nova,
                                         cleanup: list[str]) -> None:
    """A root volume a client made blank, with ``imageRef`` in the request: Nova takes the image's metadata and
    does not ask whether the volume is bootable (openstack.cloud.server does this)."""
    conn = live.conn("demo")
    blank = conn.block_storage.create_volume(name="bfv-blank-root", size=1)
    cleanup.append(blank.id)
    volume(live, blank.id, "available")
    root = {"uuid": blank.id, "source_type": "volume", "destination_type": "volume", "boot_index": 0}
    r = create(demo, "bfv-blank-image", [root], imageRef=ami["image"])
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = conn.compute.wait_for_server(conn.compute.get_server(sid), status="ACTIVE", wait=60, interval=0.1)
    assert server.status == "ACTIVE"
    g = guest(live, fake_host, sid)
    assert g.root == f"volume:{blank.id}" and g.spec["image"]["id"] == ami["image"]
    delete_server(live, sid)
    volume(live, blank.id, "available")


def test_delete_during_volume_creation_releases_everything(live: LiveCloud, fake_host: str, ami: dict[str, str],
                                                           demo: Nova, compute: Any, cleanup: list[str]) -> None:
    """A server deleted while its volumes are still being made: the build stops, the volumes it made with
    delete_on_termination go, and the existing one it reserved is available again."""
    conn = live.conn("demo")
    data = conn.block_storage.create_volume(name="bfv-del-data", size=1)
    cleanup.append(data.id)
    volume(live, data.id, "available")
    r = create(demo, "bfv-del", [
        {"uuid": ami["image"], "source_type": "image", "destination_type": "volume", "boot_index": 0,
         "volume_size": 1, "delete_on_termination": True},
        {"uuid": data.id, "source_type": "volume", "destination_type": "volume", "boot_index": -1}])
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert demo("DELETE", f"/servers/{sid}").status_code == 204
    conn.compute.wait_for_delete(conn.compute.get_server(sid), wait=60, interval=0.1)
    deadline = time.monotonic() + 60
    while True:
        # The build's root volume is the only unnamed one made from this image still around, if any.
        made = [v for v in conn.block_storage.volumes()
                if not v.name and (v.volume_image_metadata or {}).get("image_id") == ami["image"]]
        if not made:
            break
        assert time.monotonic() < deadline, f"volumes of the deleted server are left: {made}"
        time.sleep(0.2)
    assert volume(live, data.id, "available").attachments == []


def test_shelve_and_unshelve_keep_the_root_volume(live: LiveCloud, fake_host: str, ami: dict[str, str], demo: Nova,
                                                  cleanup: list[str]) -> None:
    """Shelving a volume-backed server takes no image (its disk is the volume) and unshelving boots it again
    from the same volume, which stays the server's meanwhile."""
    vid = bootable_volume(live, ami["image"], "bfv-shelve")
    cleanup.append(vid)
    sid = live.cli_json("server", "create", "--volume", vid, "--flavor", "m1.tiny", "--network", "private",
                        "--wait", "bfv-shelved", cloud="demo")["id"]
    images_before = {i.id for i in live.conn("demo").image.images()}
    live.cli("server", "shelve", sid, cloud="demo")
    server(live, sid, "SHELVED_OFFLOADED")
    assert {i.id for i in live.conn("demo").image.images()} == images_before
    assert volume(live, vid).status == "in-use"
    live.cli("server", "unshelve", sid, cloud="demo")
    server(live, sid, "ACTIVE")
    g = guest(live, fake_host, sid)
    assert g.root == f"volume:{vid}" and g.volumes == [vid]
    delete_server(live, sid)
    volume(live, vid, "available")


def test_qemu_command_line_boots_the_root_volume_first(tmp_path: Path) -> None:
    """The root volume is QEMU's first disk device (the guest's vda), booted from, with no PCI slot of its own;
    the instance's other disks follow it and data volumes keep their fixed slots."""
    iid = str(uuid.uuid4())
    root: dict[str, Any] = {"volume_id": str(uuid.uuid4()), "serial": "r" * 20, "path": "/v/root", "format": "raw",
            "read_only": False, "device": "/dev/vda", "boot_index": 0}
    data: dict[str, Any] = {"volume_id": str(uuid.uuid4()), "serial": "d" * 20, "path": "/v/data", "format": "raw",
            "read_only": False, "device": "/dev/vdc", "boot_index": None}
    found, others = qvol.split_root([data, root])
    assert found is root and others == [data]
    args = process.argv(InstanceDir(tmp_path / iid), {"flavor": {"memory_mb": 64, "vcpus": 1}}, kvm=False,
                        disks=[(str(tmp_path / "disk.config"), "raw", True)], kernel="/k", initrd="/i",
                        volumes=qvol.assign_slots(others), root_volume=root)
    devices = [args[i + 1] for i, a in enumerate(args) if a == "-device"]
    first = json.loads(devices[0])
    assert first["id"] == qvol.device_id(root["volume_id"]) and first["bootindex"] == 1
    assert "addr" not in first and first["serial"] == "r" * 20
    assert devices[1] == "virtio-blk-pci,drive=drive0,id=disk0"  # the config drive: no bootindex
    assert json.loads(devices[2])["addr"] == hex(qvol.FIRST_SLOT)
    assert args[args.index("-append") + 1] == "console=ttyS0 root=/dev/vda"


def _quota(live: LiveCloud, resource: str) -> int:
    shown = live.cli_json("quota", "show", "--volume", "demo")
    if isinstance(shown, list):
        return int(next(r["Limit"] for r in shown if r["Resource"] == resource))
    return int(shown[resource])


def test_volume_over_quota_puts_server_in_error(live: LiveCloud, fake_host: str, ami: dict[str, str],
                                                demo: Nova) -> None:
    """The volume is made as the server's project: its block storage quota applies, and a refusal ends the
    build in ERROR with the reason."""
    before = _quota(live, "gigabytes")
    live.cli("quota", "set", "--gigabytes", "1", "demo")
    try:
        r = create(demo, "bfv-quota", [{"uuid": ami["image"], "source_type": "image", "destination_type": "volume",
                                        "boot_index": 0, "volume_size": 5}])
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        failed = server(live, sid, "ERROR")
        assert "creating its image volume failed" in failed.fault["message"]
        assert "gigabytes" in failed.fault["message"].lower() or "quota" in failed.fault["message"].lower()
    finally:
        live.cli("quota", "set", "--gigabytes", str(before), "demo")
    delete_server(live, sid)


def test_several_servers_get_a_volume_each(live: LiveCloud, fake_host: str, ami: dict[str, str], demo: Nova) -> None:
    r = create(demo, "bfv-multi", [{"uuid": ami["image"], "source_type": "image", "destination_type": "volume",
                                    "boot_index": 0, "volume_size": 1, "delete_on_termination": True}],
               min_count=2, max_count=2)
    assert r.status_code == 202, r.text
    conn = live.conn("demo")
    sids = [s.id for s in conn.compute.servers() if s.name.startswith("bfv-multi-")]
    assert len(sids) == 2
    roots = []
    for sid in sids:
        server(live, sid, "ACTIVE")
        [attached] = demo("GET", f"/servers/{sid}").json()["server"]["os-extended-volumes:volumes_attached"]
        roots.append(attached["id"])
        assert guest(live, fake_host, sid).root == f"volume:{attached['id']}"
    assert len(set(roots)) == 2
    for sid in sids:
        delete_server(live, sid)
    for vid in roots:
        volume(live, vid, "deleted")
