"""The clouds.yaml that ``tinystack up`` writes also has DevStack's cloud names, so tools written for DevStack
run unchanged (issue 18)."""

from __future__ import annotations

import pytest
import yaml

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def test_devstack_cloud_names(live: LiveCloud) -> None:
    clouds = yaml.safe_load(live.clouds_yaml.read_text())["clouds"]
    assert {"devstack", "devstack-admin", "devstack-alt", "devstack-system-admin"} <= set(clouds)
    assert "&" not in live.clouds_yaml.read_text()  # written out in full, no YAML anchors to trip a reader
    who = {name: live.conn(name) for name in ("devstack", "devstack-admin", "devstack-alt")}
    projects = {name: conn.identity.get_project(conn.current_project_id).name for name, conn in who.items()}
    assert projects == {"devstack": "demo", "devstack-admin": "admin", "devstack-alt": "alt_demo"}
    token = live.cli_json("token", "issue", cloud="devstack-system-admin")
    assert token.get("system") or "project_id" not in token or not token["project_id"]
