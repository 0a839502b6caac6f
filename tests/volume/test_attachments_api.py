"""The attachments API (3.27+) and the connection actions on the live cloud: openstackclient drives a
reservation through connect and complete to delete; an attachment compute made shows here and deleting it
detaches the volume from the server; other projects get 404 and bad input Cinder's 400."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent

pytestmark = pytest.mark.api

MV = "volume 3.54"


@pytest.fixture(scope="module")
def server(live: LiveCloud) -> Iterator[Any]:
    admin, conn = live.conn("admin"), live.conn("demo")
    image = admin.image.create_image(name="attachments-test-img", data=b"\0" * 4096, disk_format="raw",
                                     container_format="bare", visibility="public")
    srv = conn.compute.create_server(name="att-api", image_id=image.id, flavor_id="42", networks="none")
    srv = conn.compute.wait_for_server(srv, status="ACTIVE", wait=30, interval=0.1)
    yield srv
    conn.compute.delete_server(srv)
    conn.compute.wait_for_delete(srv, wait=30, interval=0.1)
    admin.image.delete_image(image)


def make_volume(live: LiveCloud, name: str, cloud: str = "demo") -> Any:
    conn = live.conn(cloud)
    return conn.block_storage.wait_for_status(conn.block_storage.create_volume(name=name, size=1), "available",
                                              wait=30, interval=0.2)


def status_of(live: LiveCloud, volume_id: str, want: str, timeout: float = 30) -> Any:
    conn = live.conn("demo")
    deadline = time.monotonic() + timeout
    while (vol := conn.block_storage.get_volume(volume_id)).status != want:
        assert time.monotonic() < deadline, f"volume {volume_id} is {vol.status}, not {want}"
        time.sleep(0.1)
    return vol


def cinder(live: LiveCloud, cloud: str = "demo", mv: str = MV) -> tuple[str, dict[str, str]]:
    conn = live.conn(cloud)
    return conn.block_storage.get_endpoint(), {"X-Auth-Token": conn.session.get_token(),
                                               "OpenStack-API-Version": mv}


def test_reserve_connect_complete_delete_with_cli(live: LiveCloud, server: Any) -> None:
    vol = make_volume(live, "att-cli")
    v = ("--os-volume-api-version", "3.54")
    att = live.cli_json(*v, "volume", "attachment", "create", "--mode", "rw", vol.id, server.id, cloud="demo")
    assert att["Status"] == "reserved" and att["Instance ID"] == server.id and att["Properties"] == {}
    assert status_of(live, vol.id, "reserved").attachments == []  # only attached ones show on the volume
    connected = live.cli_json(*v, "volume", "attachment", "set", "--initiator", "iqn.test", "--host", "node1",
                              att["ID"], cloud="demo")
    assert connected["Status"] == "attaching"
    info = connected["Properties"]
    assert info["driver_volume_type"] == "file"
    assert info["data"]["path"].endswith(f"volume-{vol.id}") and info["data"]["access_mode"] == "rw"
    status_of(live, vol.id, "attaching")
    live.cli(*v, "volume", "attachment", "complete", att["ID"], cloud="demo")
    got = status_of(live, vol.id, "in-use")
    assert [(a["attachment_id"], a["server_id"], a["host_name"]) for a in got.attachments] == [
        (att["ID"], server.id, "node1")]
    listed = live.cli_json(*v, "volume", "attachment", "list", "--volume-id", vol.id, cloud="demo")
    assert listed == [{"ID": att["ID"], "Volume ID": vol.id, "Server ID": server.id, "Status": "attached"}]
    shown = live.cli_json(*v, "volume", "attachment", "show", att["ID"], cloud="demo")
    assert shown["Status"] == "attached" and shown["Attach Mode"] == "rw"
    # A second project sees none of it.
    assert live.cli_json(*v, "volume", "attachment", "list", cloud="alt_demo") == []
    assert live.cli(*v, "volume", "attachment", "show", att["ID"], cloud="alt_demo", check=False).returncode != 0
    live.cli(*v, "volume", "attachment", "delete", att["ID"], cloud="demo")
    assert status_of(live, vol.id, "available").attachments == []
    live.conn("demo").block_storage.delete_volume(vol)


def test_compute_attachment_shows_and_delete_detaches_the_server(live: LiveCloud, server: Any) -> None:
    conn = live.conn("demo")
    vol = make_volume(live, "att-compute")
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    status_of(live, vol.id, "in-use")
    url, headers = cinder(live)
    rows = requests.get(f"{url}/attachments/detail", params={"volume_id": vol.id}, headers=headers,
                        timeout=10).json()["attachments"]
    assert len(rows) == 1 and rows[0]["instance"] == server.id and rows[0]["status"] == "attached"
    assert rows[0]["connection_info"]["data"]["path"].endswith(f"volume-{vol.id}") and rows[0]["attached_at"]
    summary = requests.get(f"{url}/attachments", params={"instance_id": server.id}, headers=headers,
                           timeout=10).json()["attachments"]
    assert {"id": rows[0]["id"], "volume_id": vol.id, "instance": server.id, "status": "attached"} in summary
    # Another project can neither see nor delete it.
    alt_url, alt_headers = cinder(live, "alt_demo")
    assert requests.delete(f"{alt_url}/attachments/{rows[0]['id']}", headers=alt_headers,
                           timeout=10).status_code == 404
    r = requests.delete(f"{url}/attachments/{rows[0]['id']}", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    # The server loses the disk: compute's detach ran, not just block storage's bookkeeping.
    status_of(live, vol.id, "available")
    assert [a.volume_id for a in conn.compute.volume_attachments(server)] == []
    driver = live.agent(ComputeAgent, live.host).driver
    assert vol.id not in driver.storage.guests[server.id].volumes
    conn.block_storage.delete_volume(vol)


def test_bad_input_other_projects_and_microversions(live: LiveCloud, server: Any) -> None:
    vol = make_volume(live, "att-neg")
    url, headers = cinder(live)
    for body in ({}, {"attachment": {}}, {"attachment": {"volume_uuid": vol.id, "mode": "rx"}},
                 {"attachment": {"volume_uuid": vol.id, "bogus": 1}}):
        r = requests.post(f"{url}/attachments", json=body, headers=headers, timeout=10)
        assert r.status_code == 400 and r.json()["badRequest"]["message"], (body, r.text)
    old_url, old = cinder(live, mv="volume 3.27")
    r = requests.post(f"{old_url}/attachments", json={"attachment": {"volume_uuid": vol.id, "mode": "ro"}},
                      headers=old, timeout=10)
    assert r.status_code == 400  # mode is 3.54
    assert requests.get(f"{url}/attachments", headers={**headers, "OpenStack-API-Version": "volume 3.26"},
                        timeout=10).status_code == 404
    alt_url, alt = cinder(live, "alt_demo")
    r = requests.post(f"{alt_url}/attachments", json={"attachment": {"volume_uuid": vol.id}}, headers=alt,
                      timeout=10)
    assert r.status_code == 404 and "itemNotFound" in r.json()
    made = requests.post(f"{url}/attachments", json={"attachment": {"volume_uuid": vol.id,
                                                                    "instance_uuid": server.id}},
                         headers=headers, timeout=10)
    assert made.status_code == 200, made.text
    aid = made.json()["attachment"]["id"]
    again = requests.post(f"{url}/attachments", json={"attachment": {"volume_uuid": vol.id,
                                                                     "instance_uuid": server.id}},
                          headers=headers, timeout=10)
    assert again.status_code == 400  # not multiattach, already reserved
    for method, path, body in (("GET", "", None), ("PUT", "", {"attachment": {"connector": {"host": "x"}}}),
                               ("POST", "/action", {"os-complete": aid})):
        r = requests.request(method, f"{alt_url}/attachments/{aid}{path}", json=body, headers=alt, timeout=10)
        assert r.status_code == 404, (method, path, r.text)
    bad = requests.post(f"{url}/attachments/{aid}/action", json={"os-finish": None}, headers=headers, timeout=10)
    assert bad.status_code == 400
    at_43 = requests.post(f"{url}/attachments/{aid}/action", json={"os-complete": aid},
                          headers={**headers, "OpenStack-API-Version": "volume 3.43"}, timeout=10)
    assert at_43.status_code == 404
    assert requests.put(f"{url}/attachments/{aid}", json={"attachment": {}}, headers=headers,
                        timeout=10).status_code == 400
    assert status_of(live, vol.id, "reserved")
    assert requests.delete(f"{url}/attachments/{aid}", headers=headers, timeout=10).json() == {"attachments": []}
    status_of(live, vol.id, "available")
    live.conn("demo").block_storage.delete_volume(vol)


def test_initialize_and_terminate_connection(live: LiveCloud) -> None:
    vol = make_volume(live, "att-conn")
    url, headers = cinder(live)
    r = requests.post(f"{url}/volumes/{vol.id}/action",
                      json={"os-initialize_connection": {"connector": {"host": "node1", "initiator": "iqn.x"}}},
                      headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    info = r.json()["connection_info"]
    assert info["driver_volume_type"] == "file" and info["data"]["format"] == "raw"
    assert info["data"]["device_path"] == info["data"]["path"] and info["data"]["path"].endswith(f"volume-{vol.id}")
    assert requests.post(f"{url}/volumes/{vol.id}/action", json={"os-initialize_connection": {}}, headers=headers,
                         timeout=10).status_code == 400
    alt_url, alt = cinder(live, "alt_demo")
    assert requests.post(f"{alt_url}/volumes/{vol.id}/action",
                         json={"os-initialize_connection": {"connector": {}}}, headers=alt,
                         timeout=10).status_code == 404
    r = requests.post(f"{url}/volumes/{vol.id}/action", json={"os-terminate_connection": {"connector": {}}},
                      headers=headers, timeout=10)
    assert r.status_code == 202, r.text
    assert status_of(live, vol.id, "available")
    live.conn("demo").block_storage.delete_volume(vol)
