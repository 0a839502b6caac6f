"""capabilities/{host}, resource_filters (3.33) and per-project default types (3.62) on the live cloud: a
project's default type is the one its new volumes get; setting one is admin-only; bad input is 400."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def cinder(live: LiveCloud, cloud: str, mv: str = "volume 3.62") -> tuple[str, dict[str, str]]:
    conn = live.conn(cloud)
    return conn.block_storage.get_endpoint(), {"X-Auth-Token": conn.session.get_token(), "OpenStack-API-Version": mv}


def test_capabilities_and_resource_filters(live: LiveCloud) -> None:
    url, headers = cinder(live, "admin")
    host = requests.get(f"{url}/os-services", params={"binary": "cinder-volume"}, headers=headers,
                        timeout=10).json()["services"][0]["host"]
    caps = requests.get(f"{url}/capabilities/{host}", headers=headers, timeout=10).json()
    assert caps["volume_backend_name"] == "file" and caps["namespace"] == f"OS::Storage::Capabilities::{host}"
    assert caps["storage_protocol"] == "file" and "thin_provisioning" in caps["properties"]
    assert requests.get(f"{url}/capabilities/nowhere@file", headers=headers, timeout=10).status_code == 404
    demo_url, demo_headers = cinder(live, "demo")
    r = requests.get(f"{demo_url}/capabilities/{host}", headers=demo_headers, timeout=10)
    assert r.status_code == 403 and "forbidden" in r.json()

    filters = requests.get(f"{demo_url}/resource_filters", headers=demo_headers, timeout=10).json()
    by_resource = {f["resource"]: f["filters"] for f in filters["resource_filters"]}
    assert "status" in by_resource["volume"] and "instance_id" in by_resource["attachment"]
    assert by_resource["backup"] == ["name", "status", "volume_id", "availability_zone", "metadata"]
    assert by_resource["group"] == ["name", "status", "availability_zone"]
    assert "pool" not in by_resource  # not served here, so not advertised
    one = requests.get(f"{demo_url}/resource_filters", params={"resource": "snapshot"}, headers=demo_headers,
                       timeout=10).json()["resource_filters"]
    assert [f["resource"] for f in one] == ["snapshot"]
    assert requests.get(f"{demo_url}/resource_filters", timeout=10,
                        headers={**demo_headers, "OpenStack-API-Version": "volume 3.32"}).status_code == 404


def test_project_default_type(live: LiveCloud) -> None:
    member = live.project_conn("deftype")
    project = member.current_project_id
    vtype = live.cli_json("volume", "type", "create", f"silver-{uuid.uuid4().hex[:6]}")
    url, headers = cinder(live, "admin")
    r = requests.put(f"{url}/default-types/{project}", json={"default_type": {"volume_type": vtype["name"]}},
                     headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["default_type"] == {"project_id": project, "volume_type_id": vtype["id"]}
    listed = requests.get(f"{url}/default-types", headers=headers, timeout=10).json()["default_types"]
    assert {"project_id": project, "volume_type_id": vtype["id"]} in listed

    # The project's new volumes get it; other projects keep the cloud's default.
    vol = member.block_storage.create_volume(size=1, name="gets-silver")
    vol = member.block_storage.wait_for_status(vol, "available", wait=30, interval=0.2)
    assert vol.volume_type == vtype["name"]
    mine_url, mine = cinder(live, member.config.config["auth"]["project_name"])
    assert requests.get(f"{mine_url}/default-types/{project}", headers=mine,
                        timeout=10).json()["default_type"]["volume_type_id"] == vtype["id"]
    assert requests.get(f"{mine_url}/types/default", headers=mine, timeout=10).json()["volume_type"]["id"] == \
        vtype["id"]
    # Members may read their own project's default but not set, list or unset defaults.
    for method, path, body in (("PUT", f"/default-types/{project}", {"default_type": {"volume_type": "x"}}),
                               ("GET", "/default-types", None), ("DELETE", f"/default-types/{project}", None)):
        r = requests.request(method, f"{mine_url}{path}", json=body, headers=mine, timeout=10)
        assert r.status_code == 403, (method, path, r.text)
    alt_url, alt = cinder(live, "alt_demo")
    assert requests.get(f"{alt_url}/default-types/{project}", headers=alt, timeout=10).status_code == 403
    # Bad input: no such type (404), bodies that fail validation (400), below 3.62 (404).
    assert requests.put(f"{url}/default-types/{project}", json={"default_type": {"volume_type": "no-such"}},
                        headers=headers, timeout=10).status_code == 404
    for body in ({}, {"default_type": {}}, {"default_type": {"volume_type": " "}},
                 {"default_type": {"volume_type": "x", "y": 1}}):
        r = requests.put(f"{url}/default-types/{project}", json=body, headers=headers, timeout=10)
        assert r.status_code == 400 and r.json()["badRequest"]["message"], body
    assert requests.get(f"{url}/default-types", headers={**headers, "OpenStack-API-Version": "volume 3.61"},
                        timeout=10).status_code == 404
    # A type that is some project's default cannot be deleted until it is unset.
    member.block_storage.delete_volume(vol)
    member.block_storage.wait_for_delete(vol, wait=30, interval=0.2)
    assert live.cli("volume", "type", "delete", vtype["id"], check=False).returncode != 0
    assert requests.delete(f"{url}/default-types/{project}", headers=headers, timeout=10).status_code == 204
    assert requests.get(f"{url}/default-types/{project}", headers=headers, timeout=10).status_code == 404
    live.cli("volume", "type", "delete", vtype["id"])
