"""Block storage end to end on the live cloud, with openstackclient and openstacksdk as users drive it: volumes
from nothing, from a volume, a snapshot and an image, their real files, upload back to an image, extend,
metadata, faults in Cinder's format, quotas and project isolation."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api

GiB = 1024**3


def wait_status(live: LiveCloud, ref: str, want: str, cloud: str = "demo", kind: str = "volume",
                timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        args = ("volume", "show", ref) if kind == "volume" else ("volume", "snapshot", "show", ref)
        row: dict[str, Any] = live.cli_json(*args, cloud=cloud)
        if row["status"] == want:
            return row
        assert not row["status"].startswith("error"), row
        assert time.monotonic() < deadline, f"{ref} stayed {row['status']}"
        time.sleep(0.2)


def volume_file(live: LiveCloud, volume_id: str) -> Path:
    return live.config.state_dir / "volumes" / f"volume-{volume_id}"


def api(live: LiveCloud, cloud: str = "demo") -> tuple[str, dict[str, str]]:
    conn = live.conn(cloud)
    return conn.block_storage.get_endpoint(), {"X-Auth-Token": conn.session.get_token()}


def test_create_show_list_delete_with_cli(live: LiveCloud) -> None:
    created = live.cli_json("volume", "create", "--size", "2", "--property", "team=blue", "cli-vol", cloud="demo")
    assert created["size"] == 2
    vol = wait_status(live, created["id"], "available")
    assert vol["type"] == "__DEFAULT__" and str(vol["bootable"]).lower() == "false" and vol["properties"] == {"team": "blue"}
    path = volume_file(live, created["id"])
    assert path.stat().st_size == 2 * GiB and path.stat().st_blocks == 0  # a real, sparse file
    listed = {v["ID"]: v for v in live.cli_json("volume", "list", "--long", cloud="demo")}
    assert listed[created["id"]]["Status"] == "available"
    live.cli("volume", "set", "--name", "renamed", "--description", "d", "cli-vol", cloud="demo")
    assert live.cli_json("volume", "show", "renamed", cloud="demo")["description"] == "d"
    live.cli("volume", "delete", "renamed", cloud="demo")
    deadline = time.monotonic() + 30
    while live.cli("volume", "show", created["id"], cloud="demo", check=False).returncode == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert not path.exists()


def test_snapshot_clone_and_extend_copy_the_bytes(live: LiveCloud) -> None:
    src = wait_status(live, live.cli_json("volume", "create", "--size", "1", "src", cloud="demo")["id"], "available")
    payload = b"tinystack block storage " * 1000
    with open(volume_file(live, src["id"]), "r+b") as f:  # what a guest would have written
        f.seek(512 * 1024)
        f.write(payload)
    snap = live.cli_json("volume", "snapshot", "create", "--volume", src["id"], "snap1", cloud="demo")
    wait_status(live, snap["id"], "available", kind="snapshot")
    # Written after the snapshot: the snapshot and volumes made from it must not see it.
    with open(volume_file(live, src["id"]), "r+b") as f:
        f.seek(512 * 1024)
        f.write(b"X" * len(payload))
    from_snap = live.cli_json("volume", "create", "--snapshot", snap["id"], "--size", "2", "from-snap", cloud="demo")
    clone = live.cli_json("volume", "create", "--source", src["id"], "clone", cloud="demo")
    wait_status(live, from_snap["id"], "available")
    got = wait_status(live, clone["id"], "available")
    assert got["source_volid"] == src["id"]
    with open(volume_file(live, from_snap["id"]), "rb") as f:
        f.seek(512 * 1024)
        assert f.read(len(payload)) == payload
    assert volume_file(live, from_snap["id"]).stat().st_size == 2 * GiB
    with open(volume_file(live, clone["id"]), "rb") as f:
        f.seek(512 * 1024)
        assert f.read(len(payload)) == b"X" * len(payload)
    # A volume with a snapshot cannot go; its snapshot first.
    proc = live.cli("volume", "delete", src["id"], cloud="demo", check=False)
    assert proc.returncode != 0 and "snapshot" in proc.stderr.lower()
    live.cli("volume", "set", "--size", "3", clone["id"], cloud="demo")
    wait_status(live, clone["id"], "available")
    assert volume_file(live, clone["id"]).stat().st_size == 3 * GiB
    live.cli("volume", "snapshot", "delete", snap["id"], cloud="demo")
    deadline = time.monotonic() + 30
    while live.cli("volume", "snapshot", "show", snap["id"], cloud="demo", check=False).returncode == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    live.cli("volume", "delete", src["id"], from_snap["id"], clone["id"], cloud="demo")


def test_volume_from_image_and_upload_back(live: LiveCloud, tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * (1024 * 1024) + b"image payload" * 100 + b"\0" * (1024 * 1024))
    qcow = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)], check=True)
    image = live.cli_json("image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file",
                          str(qcow), "--property", "os_distro=testos", "vol-src-image", cloud="demo")
    vol = live.cli_json("volume", "create", "--image", image["id"], "--size", "1", "from-image", cloud="demo")
    got = wait_status(live, vol["id"], "available")
    assert str(got["bootable"]).lower() == "true"
    assert got["volume_image_metadata"]["image_id"] == image["id"]
    assert got["volume_image_metadata"]["os_distro"] == "testos"
    with open(volume_file(live, vol["id"]), "rb") as f:
        assert f.read(raw.stat().st_size) == raw.read_bytes()  # converted from qcow2 to raw
    # qcow2 keeps the upload small (the volume is mostly holes); converting it back must give the same bytes.
    out = live.cli_json("image", "create", "--volume", vol["id"], "--disk-format", "qcow2", "uploaded", cloud="demo")
    image_id = out["image_id"]
    deadline = time.monotonic() + 60
    while live.cli_json("image", "show", image_id, cloud="demo")["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    wait_status(live, vol["id"], "available")
    conn = live.conn("demo")
    back = tmp_path / "back.qcow2"
    back.write_bytes(b"".join(conn.image.download_image(image_id, stream=True).iter_content(1024 * 1024)))
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(back)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == GiB
    back_raw = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(back), str(back_raw)], check=True)
    with open(back_raw, "rb") as f:
        data = f.read(raw.stat().st_size)
    assert hashlib.sha256(data).digest() == hashlib.sha256(raw.read_bytes()).digest()
    live.cli("image", "delete", image_id, image["id"], cloud="demo")
    live.cli("volume", "delete", vol["id"], cloud="demo")


def test_metadata_bootable_readonly(live: LiveCloud) -> None:
    conn = live.conn("demo")
    vol = conn.block_storage.create_volume(size=1, name="meta", metadata={"a": "1"})
    conn.block_storage.wait_for_status(vol, "available", wait=30)
    url, headers = api(live)
    r = requests.post(f"{url}/volumes/{vol.id}/metadata", json={"metadata": {"b": "2"}}, headers=headers, timeout=10)
    assert r.status_code == 200 and r.json()["metadata"] == {"a": "1", "b": "2"}
    r = requests.put(f"{url}/volumes/{vol.id}/metadata/b", json={"meta": {"b": "3"}}, headers=headers, timeout=10)
    assert r.json() == {"meta": {"b": "3"}}
    assert requests.delete(f"{url}/volumes/{vol.id}/metadata/a", headers=headers, timeout=10).status_code == 200
    r = requests.get(f"{url}/volumes/{vol.id}/metadata/a", headers=headers, timeout=10)
    assert r.status_code == 404 and r.json()["itemNotFound"]["code"] == 404
    for flag in (True, False):
        requests.post(f"{url}/volumes/{vol.id}/action", json={"os-set_bootable": {"bootable": flag}},
                      headers=headers, timeout=10).raise_for_status()
        requests.post(f"{url}/volumes/{vol.id}/action", json={"os-update_readonly_flag": {"readonly": flag}},
                      headers=headers, timeout=10).raise_for_status()
        shown = requests.get(f"{url}/volumes/{vol.id}", headers=headers, timeout=10).json()["volume"]
        assert shown["bootable"] == str(flag).lower() and shown["metadata"]["readonly"] == str(flag)
    conn.block_storage.delete_volume(vol)


@pytest.mark.parametrize("body,status", [
    ({"volume": {"size": 0}}, 400), ({"volume": {"size": -1}}, 400), ({"volume": {"size": "#$%"}}, 400),
    ({"volume": {"name": "no-size"}}, 400), ({"volume": {"size": 1, "volume_type": "nope"}}, 404),
    ({"volume": {"size": 1, "snapshot_id": "00000000-0000-0000-0000-000000000000"}}, 404),
    ({"volume": {"size": 1, "source_volid": "00000000-0000-0000-0000-000000000000"}}, 404),
    ({"volume": {"size": 1, "imageRef": "00000000-0000-0000-0000-000000000000"}}, 404),
    ({"volume": {"size": 1, "availability_zone": "elsewhere"}}, 400),
    ({"volume": {"size": 1, "metadata": {"k": 5}}}, 400),
])
def test_bad_create_changes_nothing(live: LiveCloud, body: dict[str, Any], status: int) -> None:
    url, headers = api(live)
    before = requests.get(f"{url}/volumes", headers=headers, timeout=10).json()["volumes"]
    r = requests.post(f"{url}/volumes", json=body, headers=headers, timeout=10)
    assert r.status_code == status, r.text
    fault = next(iter(r.json().values()))
    assert fault["code"] == status and fault["message"]
    assert requests.get(f"{url}/volumes", headers=headers, timeout=10).json()["volumes"] == before


def test_other_projects_volume_is_not_found(live: LiveCloud) -> None:
    demo = live.conn("demo")
    vol = demo.block_storage.create_volume(size=1, name="private")
    demo.block_storage.wait_for_status(vol, "available", wait=30)
    url, headers = api(live, "alt_demo")
    url = url.rsplit("/", 1)[0] + f"/{live.conn('alt_demo').current_project_id}"
    for method, path, body in (("GET", "", None), ("PUT", "", {"volume": {"name": "x"}}), ("DELETE", "", None),
                               ("POST", "/action", {"os-extend": {"new_size": 2}}),
                               ("GET", "/metadata", None)):
        r = requests.request(method, f"{url}/volumes/{vol.id}{path}", json=body, headers=headers, timeout=10)
        assert r.status_code == 404, (method, path, r.text)
    listed = requests.get(f"{url}/volumes/detail", headers=headers, timeout=10).json()["volumes"]
    assert vol.id not in {v["id"] for v in listed}
    r = requests.post(f"{url}/snapshots", json={"snapshot": {"volume_id": vol.id}}, headers=headers, timeout=10)
    assert r.status_code == 404
    # The URL's project must be the token's.
    demo_url, _ = api(live, "demo")
    assert requests.get(f"{demo_url}/volumes", headers=headers, timeout=10).status_code == 400
    assert demo.block_storage.get_volume(vol.id).name == "private"
    demo.block_storage.delete_volume(vol)


def test_quota_refuses_with_413(live: LiveCloud) -> None:
    project = live.conn("alt_demo").current_project_id
    live.cli("volume", "quota", "set", "--volumes", "1", "--gigabytes", "5", project, cloud="admin", check=False)
    admin_url, admin_headers = api(live, "admin")
    admin_url = admin_url.rsplit("/", 1)[0] + f"/{live.conn('admin').current_project_id}"
    r = requests.put(f"{admin_url}/os-quota-sets/{project}", json={"quota_set": {"volumes": 1, "gigabytes": 5}},
                     headers=admin_headers, timeout=10)
    assert r.status_code == 200, r.text
    alt = live.conn("alt_demo")
    url, headers = api(live, "alt_demo")
    big = requests.post(f"{url}/volumes", json={"volume": {"size": 6}}, headers=headers, timeout=10)
    assert big.status_code == 413 and "gigabytes" in big.json()["overLimit"]["message"]
    first = alt.block_storage.create_volume(size=1, name="q1")
    second = requests.post(f"{url}/volumes", json={"volume": {"size": 1}}, headers=headers, timeout=10)
    assert second.status_code == 413 and "volumes" in second.json()["overLimit"]["message"]
    limits = requests.get(f"{url}/limits", headers=headers, timeout=10).json()["limits"]["absolute"]
    assert limits["maxTotalVolumes"] == 1 and limits["totalVolumesUsed"] == 1
    alt.block_storage.wait_for_status(first, "available", wait=30)
    alt.block_storage.delete_volume(first)
    requests.delete(f"{admin_url}/os-quota-sets/{project}", headers=admin_headers, timeout=10).raise_for_status()


def test_admin_only_fields_and_actions(live: LiveCloud) -> None:
    demo = live.conn("demo")
    vol = demo.block_storage.create_volume(size=1, name="adm")
    demo.block_storage.wait_for_status(vol, "available", wait=30)
    url, headers = api(live, "demo")
    shown = requests.get(f"{url}/volumes/{vol.id}", headers=headers, timeout=10).json()["volume"]
    assert "os-vol-host-attr:host" not in shown and shown["os-vol-tenant-attr:tenant_id"] == vol.project_id
    r = requests.post(f"{url}/volumes/{vol.id}/action", json={"os-reset_status": {"status": "error"}},
                      headers=headers, timeout=10)
    assert r.status_code == 403
    admin = live.conn("admin")
    admin_shown = admin.block_storage.get_volume(vol.id)
    assert admin_shown.host == f"{live.host}@file#file"
    demo.block_storage.delete_volume(vol)


def test_versions_and_catalog(live: LiveCloud) -> None:
    root = live.url("volume").split("/v3")[0]
    r = requests.get(root + "/", timeout=10)
    assert r.status_code == 300 and r.json()["versions"][0]["id"] == "v3.0"
    catalog = live.cli_json("catalog", "list", cloud="demo")
    types = {c["Type"] for c in catalog}
    assert {"block-storage", "volumev3"} <= types
    zones = live.cli_json("availability", "zone", "list", "--volume", cloud="demo")
    assert zones[0]["Zone Name"] == "nova"
