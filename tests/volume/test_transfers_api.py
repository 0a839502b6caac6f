"""Volume transfers on the live cloud, as Bootcamp Day 6 does them with openstackclient: the auth key is shown
once and kept only hashed; accept moves the volume (and its snapshots unless ``--no-snapshots``) to the
accepting project within its quota; other projects, wrong keys and bad bodies change nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from sqlalchemy import select

from tests.livecloud import LiveCloud
from tinystack.volume.models import Transfer

pytestmark = pytest.mark.api

V = ("--os-volume-api-version", "3.55")


def volume_with_snapshot(live: LiveCloud, name: str) -> tuple[Any, Any]:
    conn = live.conn("demo")
    vol = conn.block_storage.wait_for_status(conn.block_storage.create_volume(name=name, size=1), "available",
                                             wait=30, interval=0.2)
    snap = conn.block_storage.create_snapshot(volume_id=vol.id, name=f"{name}-snap")
    snap = conn.block_storage.wait_for_status(snap, "available", wait=30, interval=0.2)
    return vol, snap


def cinder(conn: Any, mv: str = "volume 3.57") -> tuple[str, dict[str, str]]:
    return conn.block_storage.get_endpoint(), {"X-Auth-Token": conn.session.get_token(),
                                               "OpenStack-API-Version": mv}


def wait_status(conn: Any, volume_id: str, want: str) -> Any:
    deadline = time.monotonic() + 30
    while (vol := conn.block_storage.get_volume(volume_id)).status != want:
        assert time.monotonic() < deadline, vol.status
        time.sleep(0.1)
    return vol


def test_transfer_with_snapshots_by_cli(live: LiveCloud) -> None:
    taker = live.project_conn("taker")
    vol, snap = volume_with_snapshot(live, "xfer1")
    req = live.cli_json(*V, "volume", "transfer", "request", "create", "--name", "to-taker", vol.id, cloud="demo")
    key = req["auth_key"]
    assert len(key) == 16 and req["volume_id"] == vol.id and req["name"] == "to-taker"
    demo = live.conn("demo")
    assert demo.block_storage.get_volume(vol.id).status == "awaiting-transfer"
    listed = live.cli_json(*V, "volume", "transfer", "request", "list", cloud="demo")
    assert {"ID": req["id"], "Name": "to-taker", "Volume": vol.id} in listed
    shown = live.cli_json(*V, "volume", "transfer", "request", "show", req["id"], cloud="demo")
    assert shown["volume_id"] == vol.id and "auth_key" not in shown
    # The key is stored only as a salted hash.
    svc = live.cloud.runtime.services["volume"]  # type: ignore[union-attr]
    with svc.session() as s:
        row = s.scalar(select(Transfer).where(Transfer.id == req["id"]))
        assert row is not None and key not in (row.crypt_hash, row.salt) and len(row.crypt_hash) == 64
    # Another project sees none of it; a wrong key moves nothing.
    assert req["id"] not in {t["ID"] for t in live.cli_json(*V, "volume", "transfer", "request", "list",
                                                              cloud="alt_demo")}
    url, headers = cinder(taker)
    assert requests.get(f"{url}/volume-transfers/{req['id']}", headers=headers, timeout=10).status_code == 404
    assert requests.delete(f"{url}/volume-transfers/{req['id']}", headers=headers, timeout=10).status_code == 404
    bad = requests.post(f"{url}/volume-transfers/{req['id']}/accept", json={"accept": {"auth_key": "0" * 16}},
                        headers=headers, timeout=10)
    assert bad.status_code == 400 and "auth key" in bad.json()["badRequest"]["message"]
    assert demo.block_storage.get_volume(vol.id).status == "awaiting-transfer"
    project_name = taker.config.config["auth"]["project_name"]  # project_conn's clouds.yaml entry
    accepted = live.cli_json(*V, "volume", "transfer", "request", "accept", "--auth-key", key, req["id"],
                             cloud=project_name)
    assert accepted["volume_id"] == vol.id
    moved = taker.block_storage.get_volume(vol.id)
    assert moved.status == "available" and moved.project_id == taker.current_project_id
    assert taker.block_storage.get_snapshot(snap.id).project_id == taker.current_project_id
    assert live.cli("volume", "show", vol.id, cloud="demo", check=False).returncode != 0
    assert requests.get(f"{url}/volume-transfers/{req['id']}", headers=headers, timeout=10).status_code == 404
    taker.block_storage.delete_snapshot(snap)
    taker.block_storage.wait_for_delete(snap, wait=30, interval=0.2)
    taker.block_storage.delete_volume(vol)


def test_no_snapshots_quota_and_delete(live: LiveCloud) -> None:
    taker = live.project_conn("taker2")
    demo = live.conn("demo")
    vol, snap = volume_with_snapshot(live, "xfer2")
    url, headers = cinder(demo)
    r = requests.post(f"{url}/volume-transfers", json={"transfer": {"volume_id": vol.id, "no_snapshots": True}},
                      headers=headers, timeout=10)
    assert r.status_code == 202, r.text
    t = r.json()["transfer"]
    assert t["no_snapshots"] is True and t["source_project_id"] == demo.current_project_id and t["auth_key"]
    # A second transfer of the same volume, bodies that fail validation and the old path's no_snapshots: 400.
    for body, mv in (({"transfer": {"volume_id": vol.id}}, "volume 3.57"), ({"transfer": {}}, "volume 3.57"),
                     ({"transfer": {"volume_id": vol.id, "x": 1}}, "volume 3.57"),
                     ({"transfer": {"volume_id": vol.id, "no_snapshots": True}}, "volume 3.0")):
        path = "volume-transfers" if mv != "volume 3.0" else "os-volume-transfer"
        bad = requests.post(f"{url}/{path}", json=body, headers={**headers, "OpenStack-API-Version": mv},
                            timeout=10)
        assert bad.status_code == 400 and bad.json()["badRequest"]["message"], (body, bad.text)
    old = requests.get(f"{url}/volume-transfers", headers={**headers, "OpenStack-API-Version": "volume 3.54"},
                       timeout=10)
    assert old.status_code == 404
    legacy = requests.get(f"{url}/os-volume-transfer/detail", headers={**headers, "OpenStack-API-Version": "volume 3.0"},
                          timeout=10).json()["transfers"]
    assert [x["id"] for x in legacy if x["volume_id"] == vol.id] == [t["id"]]
    # The taker's quota has no room: 413, and nothing moves.
    admin_url, admin_headers = cinder(live.conn("admin"))
    assert requests.put(f"{admin_url}/os-quota-sets/{taker.current_project_id}",
                        json={"quota_set": {"volumes": 0}}, headers=admin_headers, timeout=10).status_code == 200
    turl, theaders = cinder(taker)
    full = requests.post(f"{turl}/volume-transfers/{t['id']}/accept", json={"accept": {"auth_key": t["auth_key"]}},
                         headers=theaders, timeout=10)
    assert full.status_code == 413, full.text
    assert demo.block_storage.get_volume(vol.id).project_id == demo.current_project_id
    requests.put(f"{admin_url}/os-quota-sets/{taker.current_project_id}", json={"quota_set": {"volumes": 5}},
                 headers=admin_headers, timeout=10)
    ok = requests.post(f"{turl}/volume-transfers/{t['id']}/accept", json={"accept": {"auth_key": t["auth_key"]}},
                       headers=theaders, timeout=10)
    assert ok.status_code == 202, ok.text
    assert taker.block_storage.get_volume(vol.id).project_id == taker.current_project_id
    # no_snapshots: the snapshot stays with the giving project.
    assert demo.block_storage.get_snapshot(snap.id).project_id == demo.current_project_id
    # Deleting a transfer gives the volume back its status.
    vol2 = demo.block_storage.wait_for_status(demo.block_storage.create_volume(name="xfer3", size=1), "available",
                                              wait=30, interval=0.2)
    t2 = live.cli_json(*V, "volume", "transfer", "request", "create", vol2.id, cloud="demo")
    wait_status(demo, vol2.id, "awaiting-transfer")
    live.cli(*V, "volume", "transfer", "request", "delete", t2["id"], cloud="demo")
    wait_status(demo, vol2.id, "available")
    demo.block_storage.delete_snapshot(snap)
    demo.block_storage.wait_for_delete(snap, wait=30, interval=0.2)
    taker.block_storage.delete_volume(vol)
    demo.block_storage.delete_volume(vol2)
