"""Volume backups in object storage, end to end on the live cloud (real volume files, the real object store):
openstackclient and openstacksdk as users drive them; full and incremental backups whose restores give back the
bytes, export and import of a record, and the refusals (another project, a volume too small, a member exporting,
a parent with dependents, quotas)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud
from tests.volume.files import write_at
from tests.waiting import wait_for
from tinystack.volume.backup_agent import BackupAgent

pytestmark = pytest.mark.api

MiB = 1024**2
CHUNK = 52428800


def volume_file(live: LiveCloud, volume_id: str) -> Path:
    return live.config.state_dir / "volumes" / f"volume-{volume_id}"


def digest(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for _ in range(size // MiB):
            h.update(f.read(MiB))
    return h.hexdigest()


def status(live: LiveCloud, kind: str, ref: str, want: str, cloud: str = "demo", timeout: float = 120) -> dict[str, Any]:
    def look() -> dict[str, Any] | None:
        row: dict[str, Any] = live.cli_json(*kind.split(), "show", ref, cloud=cloud)
        assert row["status"] not in ("error", "error_restoring"), row
        return row if row["status"] == want else None

    return wait_for(look, timeout, f"{kind} {ref} {want}", interval=0.2)


def stored(live: LiveCloud, prefix: str) -> list[str]:
    """The backup objects under ``prefix``, as the backup agent's service account lists them."""
    agent = live.agent(BackupAgent, live.host)
    names: list[str] = live.call(agent.driver.swift.names("volumebackups", prefix))
    return names


def api(live: LiveCloud, cloud: str) -> tuple[str, dict[str, str]]:
    conn = live.conn(cloud)
    return conn.block_storage.get_endpoint(), {"X-Auth-Token": conn.session.get_token(),
                                               "OpenStack-API-Version": "volume 3.64"}


def new_volume(live: LiveCloud, name: str, size: int = 1, cloud: str = "demo") -> str:
    vid: str = live.cli_json("volume", "create", "--size", str(size), name, cloud=cloud)["id"]
    status(live, "volume", vid, "available", cloud)
    return vid


def test_full_and_incremental_backups_restore_the_bytes(live: LiveCloud) -> None:
    vid = new_volume(live, "bk-src")
    path = volume_file(live, vid)
    write_at(path, 4096, b"first chunk" * 1000)
    write_at(path, 3 * CHUNK + 17, b"fourth chunk" * 5000)
    before = digest(path, 1024 * MiB)
    full = live.cli_json("volume", "backup", "create", "--name", "bk-full", vid, cloud="demo")
    assert live.cli_json("volume", "show", vid, cloud="demo")["status"] in ("backing-up", "available")
    got = status(live, "volume backup", full["id"], "available")
    assert len(stored(live, f"volume_{vid}/")) == 3
    assert got["container"] == "volumebackups" and got["size"] == 1 and got["is_incremental"] is False
    assert got["object_count"] == 3  # the two chunks holding data, and the metadata: the holes took nothing
    assert live.cli_json("volume", "show", vid, cloud="demo")["status"] == "available"

    write_at(path, 3 * CHUNK + 17, b"changed" * 100)
    after = digest(path, 1024 * MiB)
    inc = live.cli_json("volume", "backup", "create", "--incremental", "--name", "bk-inc", vid, cloud="demo")
    got = status(live, "volume backup", inc["id"], "available")
    assert got["is_incremental"] is True and got["object_count"] == 2  # only the changed chunk, and metadata
    listed = {b["ID"]: b for b in live.cli_json("volume", "backup", "list", cloud="demo")}
    assert {full["id"], inc["id"]} <= set(listed)
    conn = live.conn("demo")
    assert conn.block_storage.get_backup(full["id"]).has_dependent_backups is True
    url, headers = api(live, "demo")
    page = requests.get(f"{url}/backups/detail", params={"volume_id": vid, "limit": 1, "sort": "created_at:asc"},
                        headers=headers, timeout=30).json()
    assert [b["id"] for b in page["backups"]] == [full["id"]] and page["backups"][0]["metadata"] == {}
    nxt = requests.get(page["backups_links"][0]["href"], headers=headers, timeout=30).json()
    assert [b["id"] for b in nxt["backups"]] == [inc["id"]]

    # The full backup into a new volume; the incremental one into an existing volume (restore --force).
    restored = live.cli_json("volume", "backup", "restore", full["id"], "bk-restored", cloud="demo")
    new_id = restored["volume_id"]
    status(live, "volume backup", full["id"], "available")
    status(live, "volume", new_id, "available")
    assert digest(volume_file(live, new_id), 1024 * MiB) == before
    # A new volume from the backup (3.47): at least its size, then the same bytes.
    r = requests.post(f"{url}/volumes", json={"volume": {"backup_id": full["id"], "size": 2, "name": "from-bk"}},
                      headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    from_backup = r.json()["volume"]["id"]
    status(live, "volume backup", full["id"], "available")
    status(live, "volume", from_backup, "available")
    assert digest(volume_file(live, from_backup), 1024 * MiB) == before
    assert volume_file(live, from_backup).stat().st_size == 2 * 1024 * MiB
    target = new_volume(live, "bk-target")
    write_at(volume_file(live, target), 10 * MiB, b"overwritten by the restore")
    live.cli("volume", "backup", "restore", "--force", inc["id"], target, cloud="demo")
    status(live, "volume backup", inc["id"], "available")
    status(live, "volume", target, "available")
    assert digest(volume_file(live, target), 1024 * MiB) == after

    # A parent goes after its dependents; then both, with their objects.
    proc = live.cli("volume", "backup", "delete", full["id"], cloud="demo", check=False)
    assert proc.returncode != 0 and "Incremental backups exist" in proc.stderr
    conn.block_storage.delete_backup(inc["id"])
    wait_for(lambda: conn.block_storage.find_backup(inc["id"]) is None, 60, "the incremental backup gone", 0.2)
    conn.block_storage.delete_backup(full["id"])
    wait_for(lambda: conn.block_storage.find_backup(full["id"]) is None, 60, "the full backup gone", 0.2)
    assert stored(live, f"volume_{vid}/") == []  # no object of either is left
    live.cli("volume", "delete", vid, new_id, target, from_backup, cloud="demo")


def test_export_import_record_restores_after_the_row_is_lost(live: LiveCloud) -> None:
    vid = new_volume(live, "bk-export")
    write_at(volume_file(live, vid), 123, b"disaster recovery" * 10)
    before = digest(volume_file(live, vid), 1024 * MiB)
    bid = live.cli_json("volume", "backup", "create", "--name", "bk-exp", vid, cloud="demo")["id"]
    status(live, "volume backup", bid, "available")
    record = live.cli_json("volume", "backup", "record", "export", bid, cloud="admin")
    assert record["backup_service"] and record["backup_url"]
    # A member may not export, and another project does not see the backup at all.
    url, member = api(live, "demo")
    r = requests.get(f"{url}/backups/{bid}/export_record", headers=member, timeout=30)
    assert r.status_code == 403, r.text
    other = live.project_conn("bk-other")
    ourl, oheaders = other.block_storage.get_endpoint(), {"X-Auth-Token": other.session.get_token()}
    for method, path, body in (("GET", f"/backups/{bid}", None), ("DELETE", f"/backups/{bid}", None),
                               ("POST", f"/backups/{bid}/restore", {"restore": {}})):
        r = requests.request(method, f"{ourl}{path}", json=body, headers=oheaders, timeout=30)
        assert r.status_code == 404 and r.json()["itemNotFound"]["code"] == 404, (method, path, r.text)
    # The database loses the row (a new cloud, a restored database): the record brings the backup back.
    svc = live.cloud.runtime.services["volume"]  # type: ignore[union-attr]
    from tinystack.volume.models import Backup

    with svc.session() as s:
        s.delete(s.get(Backup, bid))
    # As cinderclient imports: openstacksdk 4.22 (under `openstack volume backup record import`) posts its own URL
    # path as the backup_url, to export_record, so no cloud can import through it.
    admin_headers = api(live, "admin")[1]
    r = requests.post(f"{url}/backups/import_record", headers=api(live, "demo")[1], timeout=30,
                      json={"backup-record": record})
    assert r.status_code == 403, r.text
    for bad in ({"backup_service": "cinder.backup.drivers.swift", "backup_url": record["backup_url"]},
                {"backup_service": record["backup_service"], "backup_url": "bm90IGEgcmVjb3Jk"}):
        r = requests.post(f"{url}/backups/import_record", headers=admin_headers, timeout=30,
                          json={"backup-record": bad})
        assert r.status_code == 400, r.text
    imported = requests.post(f"{url}/backups/import_record", headers=admin_headers, timeout=30,
                             json={"backup-record": record})
    assert imported.status_code == 201 and imported.json()["backup"]["id"] == bid, imported.text
    again = requests.post(f"{url}/backups/import_record", headers=admin_headers, timeout=30,
                          json={"backup-record": record})
    assert again.status_code == 400 and "already exists" in again.text
    status(live, "volume backup", bid, "available", cloud="admin")
    restored = live.conn("admin").block_storage.restore_backup(bid, name="bk-imported")
    status(live, "volume backup", bid, "available", cloud="admin")
    status(live, "volume", restored.volume_id, "available", cloud="admin")
    assert digest(volume_file(live, restored.volume_id), 1024 * MiB) == before
    live.cli("volume", "backup", "delete", bid, cloud="admin")
    live.cli("volume", "delete", vid, cloud="demo")
    live.cli("volume", "delete", restored.volume_id, cloud="admin")


def test_refusals(live: LiveCloud) -> None:
    conn = live.project_conn("bk-neg")
    url, headers = conn.block_storage.get_endpoint(), {"X-Auth-Token": conn.session.get_token(),
                                                       "OpenStack-API-Version": "volume 3.64"}
    big = conn.block_storage.create_volume(size=2, name="bk-big")
    conn.block_storage.wait_for_status(big, "available", wait=60)
    small = conn.block_storage.create_volume(size=1, name="bk-small")
    conn.block_storage.wait_for_status(small, "available", wait=60)
    r = requests.post(f"{url}/backups", json={"backup": {"volume_id": big.id, "incremental": True}}, headers=headers,
                      timeout=30)
    assert r.status_code == 400 and "incremental" in r.json()["badRequest"]["message"], r.text
    for body in ({"backup": {"volume_id": big.id, "container": "a/b"}}, {"backup": {"volume_id": big.id, "x": 1}},
                 {"backup": {}}):
        r = requests.post(f"{url}/backups", json=body, headers=headers, timeout=30)
        assert r.status_code == 400, (body, r.text)
    r = requests.post(f"{url}/backups", json={"backup": {"volume_id": "00000000-0000-0000-0000-000000000000"}},
                      headers=headers, timeout=30)
    assert r.status_code == 404
    backup = conn.block_storage.create_backup(volume_id=big.id, name="bk-2g")
    conn.block_storage.wait_for_status(backup, "available", wait=120)
    r = requests.post(f"{url}/backups/{backup.id}/restore", json={"restore": {"volume_id": small.id}},
                      headers=headers, timeout=30)
    assert r.status_code == 400 and "too small" in r.json()["badRequest"]["message"], r.text
    assert conn.block_storage.get_volume(small.id).status == "available"  # nothing changed
    r = requests.post(f"{url}/volumes", json={"volume": {"backup_id": backup.id, "size": 1}}, headers=headers,
                      timeout=30)
    assert r.status_code == 400 and "smaller than the backup" in r.json()["badRequest"]["message"], r.text
    # Quotas: backups and backup_gigabytes.
    admin = live.conn("admin")
    admin.block_storage.update_quota_set(conn.current_project_id, backups=1)
    r = requests.post(f"{url}/backups", json={"backup": {"volume_id": small.id}}, headers=headers, timeout=30)
    assert r.status_code == 413 and "backups" in r.json()["overLimit"]["message"], r.text
    quota = admin.block_storage.get_quota_set(conn.current_project_id, usage=True)
    assert quota.usage["backups"] == 1 and quota.usage["backup_gigabytes"] == 2
    r = requests.post(f"{url}/backups/{backup.id}/action", json={"os-reset_status": {"status": "error"}},
                      headers=headers, timeout=30)
    assert r.status_code == 403
    r = requests.post(f"{url}/backups/{backup.id}/action", json={"os-force_delete": {}}, headers=headers, timeout=30)
    assert r.status_code == 403
    admin.block_storage.reset_backup_status(backup.id, "error")
    assert conn.block_storage.get_backup(backup.id).status == "error"
    conn.block_storage.delete_backup(backup.id)
    wait_for(lambda: conn.block_storage.find_backup(backup.id) is None, 60, "the backup gone", 0.2)
    conn.block_storage.delete_volume(big.id)
    conn.block_storage.delete_volume(small.id)
