"""Two backends on the live cloud's volume node (the default ``enabled_backends = file,file2``, real files):
``openstack volume backend pool list``, types pinned to a backend at create, ``openstack volume migrate --host``
copying the data (migstat, name_id, the old file gone), ``openstack volume set --type --retype-policy`` moving a
volume back, and the refusals (a member, the same host, an unknown host, an attached volume, one with
snapshots, a volume mid-migration)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud
from tests.volume.files import read_at, write_at
from tests.waiting import wait_for as until
from tinystack.volume.agent import VolumeAgent

pytestmark = pytest.mark.api

MiB = 1024**2


def cinder(live: LiveCloud, cloud: str) -> tuple[str, dict[str, str]]:
    conn = live.conn(cloud)
    url = conn.block_storage.get_endpoint().rsplit("/", 1)[0] + f"/{conn.current_project_id}"
    return url, {"X-Auth-Token": conn.session.get_token(), "OpenStack-API-Version": "volume 3.62"}


def action(live: LiveCloud, cloud: str, volume_id: str, body: dict[str, Any]) -> requests.Response:
    url, headers = cinder(live, cloud)
    return requests.post(f"{url}/volumes/{volume_id}/action", json=body, headers=headers, timeout=10)


def admin_view(live: LiveCloud, volume_id: str) -> dict[str, Any]:
    url, headers = cinder(live, "admin")
    return requests.get(f"{url}/volumes/{volume_id}", headers=headers, timeout=10).json()["volume"]  # type: ignore[no-any-return]


def settled(live: LiveCloud, volume_id: str) -> dict[str, Any]:
    """The admin view once the migration ended (migstat success or error) and the volume is available."""
    def done() -> dict[str, Any] | None:
        v = admin_view(live, volume_id)
        return v if v["os-vol-mig-status-attr:migstat"] in ("success", "error") and v["status"] == "available" \
            else None
    return until(done, timeout=30, interval=0.1, what=f"volume {volume_id} to finish migrating")


def test_pools_list_both_backends_admin_only(live: LiveCloud) -> None:
    names = until(lambda: {p["Name"] for p in live.cli_json("volume", "backend", "pool", "list")} or None,
                  timeout=30, interval=0.2, what="the volume host's pools")
    assert names == {f"{live.host}@file#file", f"{live.host}@file2#file2"}
    pools = {p["Name"]: p["Capabilities"] for p in live.cli_json("volume", "backend", "pool", "list", "--long")}
    caps = pools[f"{live.host}@file2#file2"]
    assert caps["volume_backend_name"] == "file2" and caps["pool_name"] == "file2"
    assert int(caps["total_capacity_gb"]) >= int(caps["free_capacity_gb"]) >= 0
    url, headers = cinder(live, "demo")
    r = requests.get(f"{url}/scheduler-stats/get_pools", headers=headers, timeout=10)
    assert r.status_code == 403 and "forbidden" in r.json()
    services = live.cli_json("volume", "service", "list", "--service", "cinder-volume")
    assert {s["Host"] for s in services} == {f"{live.host}@file", f"{live.host}@file2"}


def test_migrate_copies_the_data_then_retype_moves_it_back(live: LiveCloud) -> None:
    suffix = uuid.uuid4().hex[:6]
    agent = live.agent(VolumeAgent, live.host)
    first, second = agent.drivers["file"], agent.drivers["file2"]
    gold = live.cli_json("volume", "type", "create", "--property", "volume_backend_name=file", f"gold-{suffix}")
    silver = live.cli_json("volume", "type", "create", "--property", "volume_backend_name=file2",
                           f"silver-{suffix}")
    demo = live.conn("demo")
    vol = demo.block_storage.wait_for_status(demo.block_storage.create_volume(name="mig", size=1), "available",
                                             wait=30, interval=0.2)
    shown = admin_view(live, vol.id)
    assert shown["os-vol-host-attr:host"] == f"{live.host}@file#file"
    assert shown["os-vol-mig-status-attr:migstat"] is None and shown["os-vol-mig-status-attr:name_id"] is None
    old = Path(first.volume_path(vol.id))
    write_at(old, 200 * MiB, b"data that must move")

    # The refusals change nothing.
    assert action(live, "demo", vol.id, {"os-migrate_volume": {"host": f"{live.host}@file2#file2"}}).status_code == 403
    for host in (f"{live.host}@file#file", f"{live.host}@file", f"{live.host}@nowhere#nowhere", "elsewhere@file2",
                 f"{live.host}@file2#otherpool"):
        r = action(live, "admin", vol.id, {"os-migrate_volume": {"host": host}})
        assert r.status_code == 400 and r.json()["badRequest"]["message"], (host, r.text)
    assert action(live, "alt_demo", vol.id, {"os-retype": {"new_type": silver["name"],
                                                           "migration_policy": "on-demand"}}).status_code == 404
    r = action(live, "demo", vol.id, {"os-retype": {"new_type": silver["name"], "migration_policy": "never"}})
    assert r.status_code == 400 and "never" in r.json()["badRequest"]["message"]
    assert admin_view(live, vol.id)["os-vol-mig-status-attr:migstat"] is None

    # Migrate to the second backend: the data is copied into a file named after the new name_id.
    live.cli("volume", "migrate", "--host", f"{live.host}@file2#file2", vol.id)
    moved = settled(live, vol.id)
    assert moved["os-vol-mig-status-attr:migstat"] == "success" and moved["migration_status"] == "success"
    name_id = moved["os-vol-mig-status-attr:name_id"]
    assert name_id and name_id != vol.id and moved["os-vol-host-attr:host"] == f"{live.host}@file2#file2"
    new = Path(second.volume_path(name_id))
    assert read_at(new, 200 * MiB, 19) == b"data that must move"
    until(lambda: not old.exists(), timeout=10, interval=0.1, what="the old file to go")
    assert "migration_status" not in demo.block_storage.get_volume(vol.id).to_dict(computed=False) or \
        demo.block_storage.get_volume(vol.id).migration_status is None  # not shown to its member
    # Whoever opens it now opens the new file.
    r = action(live, "demo", vol.id, {"os-initialize_connection": {"connector": {"host": "somewhere"}}})
    assert r.json()["connection_info"]["data"]["path"] == str(new)

    # Retype to a type pinned to the first backend: on-demand migrates it back and only then changes its type.
    live.cli("volume", "set", "--type", gold["name"], "--retype-policy", "on-demand", vol.id, cloud="demo")
    back = until(lambda: (v := admin_view(live, vol.id))["volume_type"] == gold["name"] and v["status"] == "available"
                 and v, timeout=30, interval=0.1, what="the retype to finish")
    assert back["os-vol-host-attr:host"] == f"{live.host}@file#file" and back["os-vol-mig-status-attr:migstat"] == \
        "success"
    again = Path(first.volume_path(back["os-vol-mig-status-attr:name_id"]))
    assert read_at(again, 200 * MiB, 19) == b"data that must move"
    until(lambda: not new.exists(), timeout=10, interval=0.1, what="the second backend's file to go")

    demo.block_storage.delete_volume(vol)
    demo.block_storage.wait_for_delete(vol, wait=30, interval=0.2)
    until(lambda: not again.exists(), timeout=10, interval=0.1, what="the volume's file to go")
    live.cli("volume", "type", "delete", gold["id"], silver["id"])


def test_types_place_volumes_and_what_cannot_migrate(live: LiveCloud) -> None:
    suffix = uuid.uuid4().hex[:6]
    silver = live.cli_json("volume", "type", "create", "--property", "volume_backend_name=file2",
                           f"silver-{suffix}")
    nowhere = live.cli_json("volume", "type", "create", "--property", "volume_backend_name=nowhere",
                            f"nowhere-{suffix}")
    demo = live.conn("demo")
    vol = demo.block_storage.wait_for_status(
        demo.block_storage.create_volume(name="pinned", size=1, volume_type=silver["name"]), "available", wait=30,
        interval=0.2)
    assert admin_view(live, vol.id)["os-vol-host-attr:host"] == f"{live.host}@file2#file2"
    # A clone stays on its source's backend.
    clone = demo.block_storage.wait_for_status(
        demo.block_storage.create_volume(name="clone", size=1, source_volume_id=vol.id, volume_type=silver["name"]),
        "available", wait=30, interval=0.2)
    assert admin_view(live, clone.id)["os-vol-host-attr:host"] == f"{live.host}@file2#file2"
    # No enabled backend for the type: the volume fails as Cinder's scheduler fails it, with a user message.
    lost = demo.block_storage.create_volume(name="lost", size=1, volume_type=nowhere["name"])
    lost = demo.block_storage.wait_for_status(lost, "error", failures=[], wait=30, interval=0.2)
    url, headers = cinder(live, "demo")
    msgs = requests.get(f"{url}/messages", headers=headers, timeout=10).json()["messages"]
    assert any(m["resource_uuid"] == lost.id and m["event_id"] == "VOLUME_VOLUME_001_003" for m in msgs)

    # A volume of a type pinned to file2 cannot be migrated off it (retype it instead).
    r = action(live, "admin", vol.id, {"os-migrate_volume": {"host": f"{live.host}@file#file"}})
    assert r.status_code == 400 and "retype" in r.json()["badRequest"]["message"]
    # One with snapshots cannot move; nor can an attached one (no compute volume swap here).
    snap = demo.block_storage.wait_for_status(demo.block_storage.create_snapshot(volume_id=clone.id), "available",
                                              wait=30, interval=0.2)
    plain = demo.block_storage.wait_for_status(demo.block_storage.create_volume(name="plain", size=1), "available",
                                               wait=30, interval=0.2)
    r = action(live, "admin", clone.id, {"os-migrate_volume": {"host": f"{live.host}@file#file"}})
    assert r.status_code == 400 and "snapshots" in r.json()["badRequest"]["message"]
    assert action(live, "demo", plain.id, {"os-attach": {"instance_uuid": str(uuid.uuid4()),
                                                         "mountpoint": "/dev/vdb"}}).status_code == 202
    r = action(live, "admin", plain.id, {"os-migrate_volume": {"host": f"{live.host}@file2#file2"}})
    assert r.status_code == 400 and "swap" in r.json()["badRequest"]["message"]
    assert action(live, "demo", plain.id, {"os-detach": {}}).status_code == 202

    # A locked migration holds the volume in maintenance; the member cannot delete it meanwhile, and it ends.
    assert action(live, "admin", plain.id, {"os-migrate_volume": {"host": f"{live.host}@file2#file2",
                                                                  "lock_volume": True}}).status_code == 202
    r = action(live, "admin", plain.id, {"os-migrate_volume": {"host": f"{live.host}@file2#file2"}})
    assert r.status_code == 400  # already migrating (or, if it was that quick, already there)
    done = settled(live, plain.id)
    assert done["os-vol-host-attr:host"] == f"{live.host}@file2#file2" and done["status"] == "available"
    r = action(live, "admin", plain.id, {"os-migrate_volume_completion": {"new_volume": plain.id}})
    assert r.status_code == 400

    demo.block_storage.delete_snapshot(snap)
    demo.block_storage.wait_for_delete(snap, wait=30, interval=0.2)
    for v in (clone, vol, plain, lost):
        demo.block_storage.delete_volume(v)
        demo.block_storage.wait_for_delete(v, wait=30, interval=0.2)
    live.cli("volume", "type", "delete", silver["id"], nowhere["id"])


def test_a_volume_mid_migration_refuses_other_work(live: LiveCloud) -> None:
    """Cinder's rule while ``migration_status`` is ``migrating`` (unlocked: the status stays ``available``). The
    copy of an empty volume ends too fast to catch, so the row is held in that state directly."""
    from tinystack.volume.models import Volume

    demo = live.conn("demo")
    vol = demo.block_storage.wait_for_status(demo.block_storage.create_volume(name="busy", size=1), "available",
                                             wait=30, interval=0.2)
    svc = live.cloud.runtime.services["volume"]  # type: ignore[union-attr]
    with svc.session() as s:
        row = s.get(Volume, vol.id)
        assert row is not None
        row.migration_status = "migrating"
    url, headers = cinder(live, "demo")
    refused = [
        action(live, "admin", vol.id, {"os-migrate_volume": {"host": f"{live.host}@file2#file2"}}),
        action(live, "demo", vol.id, {"os-extend": {"new_size": 2}}),
        action(live, "demo", vol.id, {"os-attach": {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}}),
        requests.post(f"{url}/snapshots", json={"snapshot": {"volume_id": vol.id}}, headers=headers, timeout=10),
        requests.delete(f"{url}/volumes/{vol.id}", headers=headers, timeout=10),
    ]
    for r in refused:
        assert r.status_code == 400 and "migration" in r.json()["badRequest"]["message"], r.text
    assert demo.block_storage.get_volume(vol.id).status == "available"
    # The operator's way out of a stuck migration: os-reset_status with migration_status (admin only).
    assert action(live, "demo", vol.id, {"os-reset_status": {"migration_status": "none"}}).status_code == 403
    assert action(live, "admin", vol.id, {"os-reset_status": {"migration_status": "sideways"}}).status_code == 400
    assert action(live, "admin", vol.id, {"os-reset_status": {"migration_status": "none"}}).status_code == 202
    assert admin_view(live, vol.id)["os-vol-mig-status-attr:migstat"] is None
    demo.block_storage.delete_volume(vol)
    demo.block_storage.wait_for_delete(vol, wait=30, interval=0.2)


def test_a_failed_copy_ends_the_migration_in_error_where_the_volume_was(live: LiveCloud,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from tinystack.volume.drivers.base import DriverError

    agent = live.agent(VolumeAgent, live.host)
    second = agent.drivers["file2"]

    async def no_space(*args: Any) -> None:
        raise DriverError("No space left on device", permanent=True)

    demo = live.conn("demo")
    vol = demo.block_storage.wait_for_status(demo.block_storage.create_volume(name="nospace", size=1), "available",
                                             wait=30, interval=0.2)
    old = Path(agent.drivers["file"].volume_path(vol.id))
    monkeypatch.setattr(second, "copy_volume", no_space)
    assert action(live, "admin", vol.id, {"os-migrate_volume": {"host": f"{live.host}@file2#file2",
                                                                "lock_volume": True}}).status_code == 202
    failed = settled(live, vol.id)  # back from maintenance to available
    assert failed["os-vol-mig-status-attr:migstat"] == "error"
    assert failed["os-vol-host-attr:host"] == f"{live.host}@file#file"
    assert failed["os-vol-mig-status-attr:name_id"] is None and old.exists()
    monkeypatch.undo()
    # Nothing is left of the attempt on the second backend, and the next try works.
    assert not list(Path(second.volume_path(vol.id)).parent.glob(".part-*"))
    live.cli("volume", "migrate", "--host", f"{live.host}@file2#file2", vol.id)
    moved = settled(live, vol.id)
    assert moved["os-vol-mig-status-attr:migstat"] == "success"
    demo.block_storage.delete_volume(vol)
    demo.block_storage.wait_for_delete(vol, wait=30, interval=0.2)
