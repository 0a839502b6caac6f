"""Token issue, validation and revocation through the real clients."""

from __future__ import annotations

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def test_admin_token_and_catalog(live: LiveCloud) -> None:
    conn = live.conn("admin")
    token = conn.auth_token
    assert token
    types = {entry["type"] for entry in conn.config.get_service_catalog().catalog}
    assert "identity" in types


def test_validate_and_revoke(live: LiveCloud) -> None:
    conn = live.conn("admin")
    admin_token = conn.auth_token
    demo_token = live.conn("demo").auth_token
    url = live.url("identity") + "/auth/tokens"
    r = requests.get(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": demo_token}, timeout=10)
    assert r.status_code == 200
    body = r.json()["token"]
    assert body["project"]["name"] == "demo"
    assert {role["name"] for role in body["roles"]} >= {"member", "reader"}
    assert r.headers["x-openstack-request-id"].startswith("req-")
    r = requests.delete(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": demo_token}, timeout=10)
    assert r.status_code == 204
    r = requests.get(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": demo_token}, timeout=10)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404


def test_wrong_password_is_401_in_keystone_format(live: LiveCloud) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "wrong"}}}}}
    r = requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=10)
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"code", "title", "message"}
    assert "password" not in r.json()["error"]["message"].lower()


def test_malformed_and_oversized_bodies(live: LiveCloud) -> None:
    url = live.url("identity") + "/auth/tokens"
    r = requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and "error" in r.json()
    r = requests.post(url, json={"auth": {"identity": {"methods": "password"}}}, timeout=10)
    assert r.status_code == 400
    r = requests.post(url, data=b"{" + b" " * (1024 * 1024 + 10) + b"}", headers={"Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 413 and r.json()["error"]["code"] == 413


def test_legacy_v2_token(live: LiveCloud) -> None:
    conn = live.conn("admin")
    password = conn.config.auth["password"]
    body = {"auth": {"passwordCredentials": {"username": "admin", "password": password}, "tenantName": "admin"}}
    root = live.url("identity").rsplit("/v3", 1)[0]
    r = requests.post(root + "/v2.0/tokens", json=body, timeout=10)
    assert r.status_code == 200, r.text
    access = r.json()["access"]
    assert access["token"]["tenant"]["name"] == "admin"
    assert any(s["type"] == "identity" for s in access["serviceCatalog"])


def test_versions(live: LiveCloud) -> None:
    root = live.url("identity").rsplit("/v3", 1)[0]
    r = requests.get(root + "/", timeout=10)
    assert r.status_code == 300
    ids = [v["id"] for v in r.json()["versions"]["values"]]
    assert "v3.14" in ids
    assert requests.get(root + "/v3", timeout=10).json()["version"]["status"] == "stable"


def test_service_credentials_file(live: LiveCloud) -> None:
    import stat

    import yaml

    path = live.cloud.service_yaml
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = yaml.safe_load(path.read_text())
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": creds["username"], "domain": {"name": creds["user_domain_name"]}, "password": creds["password"]}}},
        "scope": {"project": {"name": creds["project_name"], "domain": {"name": creds["project_domain_name"]}}}}}
    r = requests.post(creds["auth_url"] + "/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201
    assert {"admin", "service"} <= {role["name"] for role in r.json()["token"]["roles"]}
