"""Application credential access rules through the openstack CLI and raw HTTP against a live cloud: rules on
create, the ``/v3/users/{id}/access_rules`` listing, and their enforcement by every service; plus the path
matching as unit tests."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud
from tinystack.core.auth import AccessRule, access_permitted

SERVERS = [{"service": "compute", "method": "GET", "path": "/v2.1/servers"}]


def _app_cred_token(live: LiveCloud, cred_id: str, secret: str) -> str:
    body = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred_id, "secret": secret}}}}
    issued = requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=10)
    assert issued.status_code == 201, issued.text
    return issued.headers["X-Subject-Token"]


def _get(url: str, token: str) -> requests.Response:
    return requests.get(url, headers={"X-Auth-Token": token}, timeout=10)


@pytest.mark.api
def test_access_rules_limit_the_token_and_are_listed(live: LiveCloud) -> None:
    conn = live.project_conn("rules")
    cloud, user_id = str(conn.config.name), str(conn.current_user_id)
    name = f"ruled-{secrets.token_hex(4)}"
    cred = live.cli_json("application", "credential", "create", "--access-rules", json.dumps(SERVERS), name,
                         cloud=cloud)
    rules = cred["Access Rules"]
    assert [(r["service"], r["method"], r["path"]) for r in rules] == [("compute", "GET", "/v2.1/servers")]
    token = _app_cred_token(live, cred["ID"], cred["Secret"])
    admin = str(live.conn("admin").auth_token)
    validated = requests.get(live.url("identity") + "/auth/tokens", timeout=10,
                             headers={"X-Auth-Token": admin, "X-Subject-Token": token}).json()["token"]
    assert validated["application_credential"]["access_rules"] == [
        {"service": "compute", "method": "GET", "path": "/v2.1/servers"}]
    compute = live.url("compute")
    assert _get(compute + "/servers", token).status_code == 200
    for refused in (_get(compute + "/flavors", token), _get(live.url("network") + "/v2.0/networks", token),
                    _get(live.url("identity") + f"/users/{user_id}/access_rules", token),
                    requests.post(compute + "/servers", json={}, headers={"X-Auth-Token": token}, timeout=10)):
        assert refused.status_code == 403, refused.text
    # The owner lists and shows its rules; a rule in use cannot be deleted.
    listed = live.cli_json("access", "rule", "list", cloud=cloud)
    assert [(r["Service"], r["Method"], r["Path"]) for r in listed] == [("compute", "GET", "/v2.1/servers")]
    rule_id = listed[0]["ID"]
    assert live.cli_json("access", "rule", "show", rule_id, cloud=cloud)["Path"] == "/v2.1/servers"
    busy = live.cli("access", "rule", "delete", rule_id, cloud=cloud, check=False)
    assert busy.returncode != 0
    # A second credential names the same rule by id.
    again = requests.post(live.url("identity") + f"/users/{user_id}/application_credentials", timeout=10,
                          headers={"X-Auth-Token": str(conn.auth_token)},
                          json={"application_credential": {"name": name + "-2", "access_rules": [{"id": rule_id}]}})
    assert again.status_code == 201, again.text
    assert [r["id"] for r in again.json()["application_credential"]["access_rules"]] == [rule_id]
    live.cli("application", "credential", "delete", name, name + "-2", cloud=cloud)
    live.cli("access", "rule", "delete", rule_id, cloud=cloud)
    assert live.cli_json("access", "rule", "list", cloud=cloud) == []


@pytest.mark.api
def test_access_rules_refusals(live: LiveCloud) -> None:
    owner, other = live.project_conn("rules"), live.project_conn("rules")
    owner_id, token = str(owner.current_user_id), str(owner.auth_token)
    base = live.url("identity")

    def create(**extra: Any) -> requests.Response:
        body = {"application_credential": {"name": f"r-{secrets.token_hex(4)}", **extra}}
        return requests.post(base + f"/users/{owner_id}/application_credentials", json=body, timeout=10,
                             headers={"X-Auth-Token": token})

    made = create(access_rules=SERVERS)
    assert made.status_code == 201
    rule_id = made.json()["application_credential"]["access_rules"][0]["id"]
    # Another user neither lists, shows, deletes nor reuses them.
    other_token = str(other.auth_token)
    assert _get(base + f"/users/{owner_id}/access_rules", other_token).status_code == 403
    assert _get(base + f"/users/{owner_id}/access_rules/{rule_id}", other_token).status_code == 403
    assert requests.delete(base + f"/users/{owner_id}/access_rules/{rule_id}", timeout=10,
                           headers={"X-Auth-Token": other_token}).status_code == 403
    theirs = requests.post(base + f"/users/{other.current_user_id}/application_credentials", timeout=10,
                           headers={"X-Auth-Token": other_token},
                           json={"application_credential": {"name": "steal", "access_rules": [{"id": rule_id}]}})
    assert theirs.status_code == 404
    # Bad rules: 400 in Keystone's format.
    for bad in ([{"service": "compute", "method": "GET", "path": "servers"}],
                [{"service": "compute", "method": "GRAB", "path": "/v2.1/servers"}],
                [{"service": "compute", "path": "/v2.1/servers"}], [{"path": "/x", "colour": "blue"}]):
        answer = create(access_rules=bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 400, (bad, answer.text)
    assert _get(base + f"/users/{owner_id}/access_rules/nope", token).status_code == 404


@pytest.mark.unit
def test_access_rule_paths() -> None:
    one = (AccessRule("compute", "GET", "/v2.1/servers/*"),)
    assert access_permitted(one, "compute", "GET", "/v2.1/servers/abc")
    assert not access_permitted(one, "compute", "GET", "/v2.1/servers/abc/action")
    assert not access_permitted(one, "compute", "GET", "/v2.1/servers")
    assert not access_permitted(one, "compute", "POST", "/v2.1/servers/abc")
    assert not access_permitted(one, "network", "GET", "/v2.1/servers/abc")
    named = (AccessRule("compute", "POST", "/v2.1/servers/{server_id}/action"),)
    assert access_permitted(named, "compute", "POST", "/v2.1/servers/abc/action")
    deep = (AccessRule("image", "GET", "/v2/**"),)
    assert access_permitted(deep, "image", "GET", "/v2/images/abc/file")
    volume = (AccessRule("block-storage", "GET", "/v3/*/volumes"),)
    assert access_permitted(volume, "volume", "GET", "/v3/p1/volumes")
    literal = (AccessRule("compute", "GET", "/v2.1/servers.json"),)
    assert not access_permitted(literal, "compute", "GET", "/v2.1/serversXjson")
