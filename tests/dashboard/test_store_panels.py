"""Project > Object Store > Containers and the Volumes panels added with it (Backups, volume transfers, upload to
image, a volume from a snapshot), over plain HTTP (api tier): each form with bad input that changes nothing,
another project's resource, and the API's own errors shown as it gave them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.dashboard.conftest import csrf_of, http_login
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = pytest.mark.api

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def proj(live: LiveCloud) -> Any:
    """A project of its own (its cloud name in clouds.yaml) and another one, each with a member user."""
    return live.conn(live.project_conn("store").config.name), live.conn(live.project_conn("store-other").config.name)


def _post(s: requests.Session, url: str, page: str, data: dict[str, str], **kw: Any) -> requests.Response:
    """A form sent as the browser sends it: with the CSRF token of the page it is on."""
    token = csrf_of(s.get(page, timeout=30).text)
    return s.post(url, data={"csrf_token": token, **data}, timeout=30, **kw)


def test_containers_objects_folders_and_public_access(live: LiveCloud, proj: Any) -> None:
    conn, other_conn = proj
    s, base = http_login(live, conn.config.name), live.url("dashboard")
    panel = f"{base}/project/containers/"
    assert 'id="create-container"' in s.get(panel, timeout=30).text
    for bad, message in (({"name": "a/b"}, "must not contain a slash"), ({"name": " "}, "Container Name is required"),
                         ({"name": "x" * 257}, "at most 256 bytes")):
        assert message in _post(s, f"{panel}create/", panel, bad).text, bad
    assert list(conn.object_store.containers()) == []
    name = f"c-{uuid.uuid4().hex[:6]}"
    r = _post(s, f"{panel}create/", panel, {"name": name, "public": "off"})
    assert f"Created container {name}" in r.text and r.url.endswith(f"/project/containers/{name}/")
    assert "A container named" in _post(s, f"{panel}create/", panel, {"name": name}).text
    page = f"{panel}{name}/"
    token = csrf_of(s.get(page, timeout=30).text)
    # Upload with the file input, under the file's own name; then a folder and a file in it.
    r = s.post(f"{page}upload/", data={"csrf_token": token, "prefix": ""},
               files={"file": (HOSTILE, b"hello object\n", "text/plain")}, timeout=30)
    assert "Uploaded" in r.text and HOSTILE not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    for bad in ("a/b", "/", ""):
        r = _post(s, f"{page}folder/", page, {"name": bad, "prefix": ""})
        assert "Folder Name must not contain a slash" in r.text or "Name is required" in r.text, bad
    assert {o.name for o in conn.object_store.objects(name)} == {HOSTILE}
    r = _post(s, f"{page}folder/", page, {"name": "docs", "prefix": ""})
    assert "Created folder docs/" in r.text
    r = s.post(f"{page}upload/", data={"csrf_token": token, "prefix": "docs/", "name": "note.txt"},
               files={"file": ("ignored.bin", b"\x00\x01binary", "application/octet-stream")}, timeout=30)
    assert "Uploaded docs/note.txt" in r.text
    assert conn.object_store.download_object("docs/note.txt", container=name) == b"\x00\x01binary"
    top = s.get(page, timeout=30).text
    assert 'data-name="docs/"' in top and 'data-name="docs/note.txt"' not in top
    inside = s.get(f"{page}?prefix=docs%2F", timeout=30).text
    assert 'data-name="docs/note.txt"' in inside and 'id="folder-crumbs"' in inside
    got = s.get(f"{page}object/docs/note.txt", timeout=30)
    assert got.content == b"\x00\x01binary" and got.headers["Content-Disposition"].startswith("attachment;")
    # No file, or a name with a leading slash: refused, nothing stored.
    r = s.post(f"{page}upload/", data={"csrf_token": token, "prefix": ""}, timeout=30)
    assert "Choose a file to upload" in r.text
    r = s.post(f"{page}upload/", data={"csrf_token": token, "name": "/abs"}, files={"file": ("f", b"x")}, timeout=30)
    assert "must not start with a slash" in r.text
    assert {o.name for o in conn.object_store.objects(name)} == {"docs/", "docs/note.txt", HOSTILE}
    # Public access: anyone reads the object and lists the container without a token; private again: refused.
    public = f"{conn.object_store.get_endpoint()}/{name}/docs/note.txt"
    assert requests.get(public, timeout=30).status_code in (401, 403)
    r = _post(s, f"{page}access/", page, {"public": "on"})
    assert f"Container {name} is now public" in r.text and 'id="public-url"' in r.text
    assert requests.get(public, timeout=30).content == b"\x00\x01binary"
    assert "note.txt" in requests.get(f"{conn.object_store.get_endpoint()}/{name}?prefix=docs/", timeout=30).text
    assert "Choose public or private" in _post(s, f"{page}access/", page, {"public": "maybe"}).text
    _post(s, f"{page}access/", page, {"public": "off"})
    assert requests.get(public, timeout=30).status_code in (401, 403)
    # Another project: the same name is not its container; nothing of ours is deleted or opened.
    other = http_login(live, other_conn.config.name)
    assert other.get(page, timeout=30).status_code == 404
    r = _post(other, f"{page}delete_object/", f"{base}/project/", {"object": "docs/note.txt"})
    assert "Error:" in r.text
    assert conn.object_store.download_object("docs/note.txt", container=name) == b"\x00\x01binary"
    # A container with objects: the API's refusal (409), as it worded it.
    r = _post(s, f"{page}delete/", page, {})
    assert "Error:" in r.text and "conflict" in r.text.lower()
    # A folder with an object in it is not deleted.
    r = _post(s, f"{page}delete_object/", page, {"object": "docs/"})
    assert "is not empty" in r.text and "docs/" in {o.name for o in conn.object_store.objects(name)}
    for obj in ("docs/note.txt", "docs/", HOSTILE):
        assert "Deleted" in _post(s, f"{page}delete_object/", page, {"object": obj}).text
    assert f"Deleted container {name}" in _post(s, f"{page}delete/", page, {}).text
    assert list(conn.object_store.containers()) == []
    # Without the CSRF token: refused.
    assert s.post(f"{panel}create/", data={"name": "no-token"}, timeout=30).status_code == 403
    assert list(conn.object_store.containers()) == []


def _volume(conn: Any, name: str, size: int = 1) -> Any:
    vol = conn.block_storage.create_volume(size=size, name=name)
    return conn.block_storage.wait_for_status(vol, "available", wait=60)


def test_backups_create_restore_delete(live: LiveCloud, proj: Any) -> None:
    conn, other_conn = proj
    s, base = http_login(live, conn.config.name), live.url("dashboard")
    vol = _volume(conn, "to-back-up")
    panel = f"{base}/project/backups/"
    assert 'id="create-backup"' in s.get(panel, timeout=30).text
    r = _post(s, f"{panel}create/", panel, {"volume_id": ""})
    assert "Volume id is required" in r.text
    r = _post(s, f"{panel}create/", panel, {"volume_id": str(uuid.uuid4())})
    assert "Error:" in r.text and list(conn.block_storage.backups()) == []
    page = f"{base}/project/volumes/{vol.id}/"
    r = _post(s, f"{panel}create/", page, {"volume_id": vol.id, "name": HOSTILE, "next": "/project/backups/"})
    assert "Creating volume backup" in r.text and "&lt;img src=x" in r.text and HOSTILE not in r.text
    backup = next(iter(conn.block_storage.backups()))
    # While it is being made, the rows refresh themselves.
    conn.block_storage.wait_for_status(backup, "available", wait=120)
    rows = s.get(f"{panel}?partial=1", timeout=30).text
    assert f'data-id="{backup.id}" data-status="available"' in rows and "data-poll" not in rows
    # Another project can neither restore nor delete it.
    other = http_login(live, other_conn.config.name)
    assert backup.id not in other.get(panel, timeout=30).text
    r = _post(other, f"{panel}{backup.id}/restore/", f"{base}/project/", {"name": "stolen"})
    assert "Error:" in r.text
    r = _post(other, f"{panel}{backup.id}/delete/", f"{base}/project/", {})
    assert "Error:" in r.text and conn.block_storage.get_backup(backup.id).status == "available"
    # Restore to a new volume.
    r = _post(s, f"{panel}{backup.id}/restore/", panel, {"name": "restored"})
    assert "Restoring backup to volume" in r.text
    restored = wait_for(lambda: next((v for v in conn.block_storage.volumes() if v.name == "restored"), None), 30,
                        "the restored volume")
    conn.block_storage.wait_for_status(restored, "available", wait=120)
    conn.block_storage.wait_for_status(conn.block_storage.get_backup(backup.id), "available", wait=120)
    assert "Deleting volume backup" in _post(s, f"{panel}{backup.id}/delete/", panel, {}).text
    wait_for(lambda: not list(conn.block_storage.backups()), 120, "the backup gone")
    for v in (vol, restored):
        conn.block_storage.delete_volume(v)


def test_volume_transfer_upload_to_image_and_volume_from_snapshot(live: LiveCloud, proj: Any) -> None:
    conn, other_conn = proj
    s, base = http_login(live, conn.config.name), live.url("dashboard")
    vol = _volume(conn, "to-transfer")
    page = f"{base}/project/volumes/{vol.id}/"
    text = s.get(page, timeout=30).text
    assert 'id="create-transfer"' in text and 'id="upload-to-image"' in text and 'id="backup-volume"' in text
    assert "Name is required" in _post(s, f"{page}transfer/", page, {"name": ""}).text
    r = _post(s, f"{page}transfer/", page, {"name": "gift"})
    assert r.status_code == 200 and 'id="transfer-auth-key"' in r.text
    tid = r.text.split('id="transfer-id">')[1].split("<")[0]
    key = r.text.split('id="transfer-auth-key">')[1].split("<")[0]
    assert len(key) >= 16
    # The key is shown that once: not on the volumes page, where the pending transfer is listed.
    listing = s.get(f"{base}/project/volumes/", timeout=30).text
    assert tid in listing and key not in listing
    other = http_login(live, other_conn.config.name)
    # Another project cannot offer our volume.
    r = _post(other, f"{page}transfer/", f"{base}/project/volumes/", {"name": "not mine"})
    assert "Error:" in r.text and 'id="transfer-auth-key"' not in r.text
    accept = f"{base}/project/volumes/accept_transfer/"
    r = _post(other, accept, f"{base}/project/volumes/", {"transfer_id": tid, "auth_key": "wrong"})
    assert "Error:" in r.text and conn.block_storage.get_volume(vol.id).id == vol.id
    assert "Auth key is required" in _post(other, accept, f"{base}/project/volumes/", {"transfer_id": tid}).text
    r = _post(other, accept, f"{base}/project/volumes/", {"transfer_id": tid, "auth_key": key})
    assert "Accepted volume transfer" in r.text
    assert vol.id in [v.id for v in other_conn.block_storage.volumes()]
    assert vol.id not in [v.id for v in conn.block_storage.volumes()]
    # Cancel a transfer: made and cancelled by the owner, then nothing pending.
    vol2 = _volume(conn, "to-keep")
    page2 = f"{base}/project/volumes/{vol2.id}/"
    r = _post(s, f"{page2}transfer/", page2, {"name": "changed my mind"})
    tid2 = r.text.split('id="transfer-id">')[1].split("<")[0]
    r = _post(other, f"{base}/project/volumes/transfers/{tid2}/delete/", f"{base}/project/volumes/", {})
    assert "Error:" in r.text
    r = _post(s, f"{base}/project/volumes/transfers/{tid2}/delete/", f"{base}/project/volumes/", {})
    assert "Cancelled the volume transfer" in r.text and tid2 not in s.get(f"{base}/project/volumes/", timeout=30).text
    # Upload to Image.
    act = f"{page2}action"
    r = _post(s, act, page2, {"action": "upload_image", "image_name": "from-vol", "disk_format": "exe"})
    assert "Unknown disk format" in r.text
    assert "Image name is required" in _post(s, act, page2, {"action": "upload_image", "image_name": ""}).text
    r = _post(s, act, page2, {"action": "upload_image", "image_name": "from-vol", "disk_format": "qcow2"})
    assert "Upload_image: request sent" in r.text
    image = wait_for(lambda: next((i for i in conn.image.images() if i.name == "from-vol"), None), 30, "the image")
    assert image.disk_format == "qcow2"
    wait_for(lambda: conn.image.get_image(image.id).status == "active", 120, "the image active")
    conn.block_storage.wait_for_status(conn.block_storage.get_volume(vol2.id), "available", wait=120)
    r = _post(other, f"{page2}action", f"{base}/project/", {"action": "upload_image", "image_name": "stolen"})
    assert "Error:" in r.text and not any(i.name == "stolen" for i in other_conn.image.images())
    # A volume from a snapshot, from the Snapshots panel.
    snap = conn.block_storage.create_snapshot(volume_id=vol2.id, name="snap")
    conn.block_storage.wait_for_status(snap, "available", wait=60)
    snaps = f"{base}/project/snapshots/"
    assert 'class="inline create-volume-from-snapshot"' in s.get(snaps, timeout=30).text
    r = _post(s, f"{base}/project/volumes/create/", snaps, {"source": "snapshot", "snapshot_id": snap.id,
                                                           "name": "from-snap", "size": "1", "next": "/project/volumes/"})
    assert "Creating volume from-snap" in r.text
    made = wait_for(lambda: next((v for v in conn.block_storage.volumes() if v.name == "from-snap"), None), 30, "it")
    assert made.snapshot_id == snap.id
    r = _post(s, f"{base}/project/volumes/create/", snaps, {"source": "snapshot", "snapshot_id": snap.id, "size": "x"})
    assert "Size must be a whole number" in r.text
    r = _post(other, f"{base}/project/volumes/create/", snaps, {"source": "snapshot", "snapshot_id": snap.id,
                                                               "name": "stolen", "size": "1"})
    assert "Error:" in r.text and not any(v.name == "stolen" for v in other_conn.block_storage.volumes())
    conn.block_storage.wait_for_status(made, "available", wait=60)
    conn.block_storage.delete_volume(made)
    conn.block_storage.wait_for_delete(made, wait=60)
    conn.block_storage.delete_snapshot(snap)
    conn.block_storage.wait_for_delete(snap, wait=60)
    conn.block_storage.delete_volume(vol2)
    conn.image.delete_image(image.id)
