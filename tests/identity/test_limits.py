"""Unified limits (registered limits, project limits, the model) through the openstack CLI and raw HTTP against a
live cloud, including the refusals."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def _call(live: LiveCloud, token: str, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
    return requests.request(method, live.url("identity") + path, json=body, params=params or None,
                            headers={"X-Auth-Token": token}, timeout=10)


@pytest.fixture(scope="module")
def service(live: LiveCloud) -> str:
    """A service of this module's own, so its limits do not meet other tests'."""
    admin = live.conn("admin")
    kind = f"limits-{secrets.token_hex(4)}"
    return str(admin.identity.create_service(type=kind, name=kind).id)


def test_limits_cli_loop(live: LiveCloud, service: str) -> None:
    member = live.project_conn("limited")
    project = member.current_project_id
    registered = live.cli_json("registered", "limit", "create", "--service", service, "--default-limit", "10",
                               "--region", "RegionOne", "--description", "cores by default", "cores")
    assert registered["default_limit"] == 10 and registered["region_id"] == "RegionOne"
    listed = live.cli_json("registered", "limit", "list", "--service", service)
    assert [r["ID"] for r in listed] == [registered["id"]]
    limit = live.cli_json("limit", "create", "--project", project, "--service", service, "--resource-limit", "5",
                          "--region", "RegionOne", "cores")
    assert limit["resource_limit"] == 5 and limit["project_id"] == project
    assert [x["ID"] for x in live.cli_json("limit", "list", "--service", service)] == [limit["id"]]
    updated = live.cli_json("limit", "set", "--resource-limit", "7", limit["id"])
    assert updated["resource_limit"] == 7
    # The project's own member reads its limit and the defaults, and nothing else.
    cloud = str(member.config.name)
    mine = live.cli_json("limit", "list", cloud=cloud)
    assert [x["ID"] for x in mine] == [limit["id"]]
    assert live.cli_json("limit", "show", limit["id"], cloud=cloud)["resource_limit"] == 7
    assert registered["id"] in [r["ID"] for r in live.cli_json("registered", "limit", "list", cloud=cloud)]
    live.cli("limit", "delete", limit["id"])
    live.cli("registered", "limit", "delete", registered["id"])
    assert live.cli("registered", "limit", "show", registered["id"], check=False).returncode != 0


def test_limit_model(live: LiveCloud) -> None:
    member = live.project_conn("model")
    model = _call(live, member.auth_token, "GET", "/limits/model")
    assert model.status_code == 200 and model.json()["model"]["name"] == "flat"


def test_limits_refusals(live: LiveCloud, service: str) -> None:
    admin = live.conn("admin").auth_token
    member, other = live.project_conn("limited"), live.project_conn("limited")
    token = member.auth_token
    reg = {"registered_limits": [{"service_id": service, "resource_name": "ram", "default_limit": 100}]}
    # Writes are the admin's.
    assert _call(live, token, "POST", "/registered_limits", reg).status_code == 403
    made = _call(live, admin, "POST", "/registered_limits", reg)
    assert made.status_code == 201, made.text
    reg_id = made.json()["registered_limits"][0]["id"]
    assert _call(live, admin, "POST", "/registered_limits", reg).status_code == 409
    lim = {"limits": [{"project_id": other.current_project_id, "service_id": service, "resource_name": "ram",
                       "resource_limit": 50}]}
    assert _call(live, token, "POST", "/limits", lim).status_code == 403
    created = _call(live, admin, "POST", "/limits", lim)
    assert created.status_code == 201, created.text
    limit_id = created.json()["limits"][0]["id"]
    assert _call(live, token, "PATCH", f"/limits/{limit_id}", {"limit": {"resource_limit": 1}}).status_code == 403
    assert _call(live, token, "DELETE", f"/registered_limits/{reg_id}").status_code == 403
    # Another project's limit is neither shown nor listed.
    assert _call(live, token, "GET", f"/limits/{limit_id}").status_code == 403
    assert _call(live, token, "GET", "/limits", project_id=other.current_project_id).json()["limits"] == []
    assert _call(live, other.auth_token, "GET", f"/limits/{limit_id}").status_code == 200
    # A limit needs its registered limit; a registered limit in use cannot go.
    orphan = {"limits": [{**lim["limits"][0], "resource_name": "unregistered"}]}
    assert _call(live, admin, "POST", "/limits", orphan).status_code == 403
    assert _call(live, admin, "DELETE", f"/registered_limits/{reg_id}").status_code == 403
    # Bad input: 400 in Keystone's format, nothing made.
    for bad in ({"limits": []}, {"limits": [{**lim["limits"][0], "resource_limit": "many"}]},
                {"limits": [{**lim["limits"][0], "resource_limit": -2}]},
                {"limits": [{**lim["limits"][0], "domain_id": "default"}]},
                {"limits": [{**lim["limits"][0], "project_id": "nope"}]},
                {"limits": [{**lim["limits"][0], "service_id": "nope"}]}):
        answer = _call(live, admin, "POST", "/limits", bad)
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error"]["code"] == 400
    assert len(_call(live, admin, "GET", "/limits", service_id=service, resource_name="ram").json()["limits"]) == 1
    assert _call(live, admin, "PATCH", f"/limits/{limit_id}", {"limit": {"project_id": "x"}}).status_code == 400
    assert _call(live, admin, "GET", "/limits/nope").status_code == 404
    assert _call(live, admin, "DELETE", f"/limits/{limit_id}").status_code == 204
    assert _call(live, admin, "DELETE", f"/registered_limits/{reg_id}").status_code == 204
