"""Identity across a restart and under a live-reloaded policy file, with the real clients."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.api, pytest.mark.e2e]


def _validate(cloud: LiveCloud, admin_token: str, token: str) -> int:
    r = requests.get(cloud.url("identity") + "/auth/tokens",
                     headers={"X-Auth-Token": admin_token, "X-Subject-Token": token}, timeout=10)
    return r.status_code


def test_state_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    first = LiveCloud(tmp_path)
    try:
        demo_token = first.conn("demo").auth_token
        passwords = first.clouds_yaml.read_text()
        keystone_url = first.url("identity")
    finally:
        first.stop()
    second = LiveCloud(tmp_path)
    try:
        assert second.clouds_yaml.read_text().split("\n", 1)[1] == passwords.split("\n", 1)[1].replace(
            keystone_url, second.url("identity"))
        admin_token = second.conn("admin").auth_token
        assert _validate(second, admin_token, demo_token) == 200
        users = {u.name for u in second.conn("admin").identity.users()}
        assert {"admin", "demo"} <= users
    finally:
        second.stop()


def test_policy_file_is_reloaded_without_restart(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path)
    policy = tmp_path / "policy.yaml"
    try:
        admin = cloud.conn("admin")
        reader = admin.identity.create_user(name="domain-reader", domain_id="default", password="reader-pass")
        role = admin.identity.find_role("reader")
        admin.identity.assign_domain_role_to_user("default", reader, role)
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": reader.id, "password": "reader-pass"}}}, "scope": {"domain": {"id": "default"}}}}
        token = requests.post(cloud.url("identity") + "/auth/tokens", json=body, timeout=10).headers["X-Subject-Token"]
        demo = cloud.conn("demo").auth_token

        def list_projects(as_token: str) -> requests.Response:
            return requests.get(cloud.url("identity") + "/projects", headers={"X-Auth-Token": as_token}, timeout=10)

        # Keystone's default: a domain reader lists its domain's projects; a project member may not.
        assert "demo" in [p["name"] for p in list_projects(token).json()["projects"]]
        assert list_projects(demo).status_code == 403
        # openstackclient falls back to /v3/users/{id}/projects on that 403, so demo still sees its own.
        assert [p["Name"] for p in cloud.cli_json("project", "list", cloud="demo")] == ["demo"]

        policy.write_text('"identity:list_projects": "rule:admin_required"\n')
        time.sleep(1.2)
        refused = list_projects(token)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == 403
        assert len(cloud.cli_json("project", "list", cloud="admin")) >= 3
        policy.unlink()
        time.sleep(1.2)
        assert list_projects(token).status_code == 200
    finally:
        cloud.stop()


def test_demo_is_refused_user_list(live: LiveCloud) -> None:
    refused = live.cli("user", "list", cloud="demo", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
