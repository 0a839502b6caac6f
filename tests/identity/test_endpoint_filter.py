"""OS-EP-FILTER through the openstack CLI and raw HTTP against a live cloud: endpoint groups, endpoints and groups
given to a project, and the project's token catalog filtered accordingly; with the refusals."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def _catalog_endpoints(live: LiveCloud, cloud: str) -> set[str]:
    token = live.conn(cloud).auth_token
    got = requests.get(live.url("identity") + "/auth/catalog", headers={"X-Auth-Token": token}, timeout=10)
    assert got.status_code == 200, got.text
    return {ep["id"] for entry in got.json()["catalog"] for ep in entry["endpoints"]}


def _endpoint(live: LiveCloud, service_type: str, interface: str) -> dict[str, Any]:
    rows = live.cli_json("endpoint", "list", "--service", service_type, "--interface", interface)
    assert len(rows) == 1, rows
    return dict(rows[0])


def test_project_catalog_follows_its_endpoints_and_groups(live: LiveCloud, tmp_path: Path) -> None:
    conn = live.project_conn("epf")
    cloud, project = str(conn.config.name), str(conn.current_project_id)
    everything = _catalog_endpoints(live, cloud)
    compute = _endpoint(live, "compute", "public")
    identity = _endpoint(live, "identity", "public")
    assert {compute["ID"], identity["ID"]} <= everything
    live.cli("endpoint", "add", "project", compute["ID"], project)
    assert _catalog_endpoints(live, cloud) == {compute["ID"]}
    filters = tmp_path / "filters.json"
    identity_service = next(str(svc.id) for svc in live.conn("admin").identity.services() if svc.type == "identity")
    filters.write_text(json.dumps({"service_id": identity_service, "interface": "public"}))
    name = f"epg-{secrets.token_hex(4)}"
    group = live.cli_json("endpoint", "group", "create", "--description", "identity, public", name, str(filters))
    assert group["filters"] == {"service_id": identity_service, "interface": "public"}
    live.cli("endpoint", "group", "add", "project", name, project)
    assert _catalog_endpoints(live, cloud) == {compute["ID"], identity["ID"]}
    listed = {row["ID"] for row in live.cli_json("endpoint", "list", "--project", project)}
    assert listed == {compute["ID"], identity["ID"]}
    assert [g["Name"] for g in live.cli_json("endpoint", "group", "list", "--project", project)] == [name]
    live.cli("endpoint", "group", "remove", "project", name, project)
    live.cli("endpoint", "remove", "project", compute["ID"], project)
    assert _catalog_endpoints(live, cloud) == everything
    live.cli("endpoint", "group", "delete", name)
    assert live.cli("endpoint", "group", "show", name, check=False).returncode != 0


def test_endpoint_filter_refusals(live: LiveCloud) -> None:
    member = live.project_conn("epf")
    admin = live.conn("admin").auth_token
    base = live.url("identity") + "/OS-EP-FILTER"

    def call(token: str, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, base + path, json=body, headers={"X-Auth-Token": token}, timeout=10)

    body = {"endpoint_group": {"name": "g", "filters": {"interface": "public"}}}
    assert call(member.auth_token, "POST", "/endpoint_groups", body).status_code == 403
    assert call(member.auth_token, "GET", "/endpoint_groups").status_code == 403
    assert call(member.auth_token, "GET", f"/projects/{member.current_project_id}/endpoints").status_code == 403
    for bad in ({"endpoint_group": {"name": "g"}}, {"endpoint_group": {"name": "g", "filters": {}}},
                {"endpoint_group": {"name": "g", "filters": {"interface": "sideways"}}},
                {"endpoint_group": {"name": "g", "filters": {"colour": "blue"}}}):
        answer = call(admin, "POST", "/endpoint_groups", bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 400, (bad, answer.text)
    made = call(admin, "POST", "/endpoint_groups", body)
    assert made.status_code == 201
    group_id = made.json()["endpoint_group"]["id"]
    assert call(admin, "PUT", f"/endpoint_groups/{group_id}/projects/nope").status_code == 404
    assert call(admin, "PUT", f"/projects/{member.current_project_id}/endpoints/nope").status_code == 404
    assert call(admin, "GET", f"/endpoint_groups/{group_id}/projects/{member.current_project_id}").status_code == 404
    assert call(admin, "PATCH", f"/endpoint_groups/{group_id}",
                {"endpoint_group": {"name": "renamed"}}).json()["endpoint_group"]["name"] == "renamed"
    assert call(admin, "DELETE", f"/endpoint_groups/{group_id}").status_code == 204
