"""Clients for the object storage tests: swiftclient connections and raw HTTP with a project's token."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import swiftclient
import yaml

from tests.livecloud import LiveCloud


def cloud_auth(live: LiveCloud, cloud: str) -> dict[str, Any]:
    return dict(yaml.safe_load(live.clouds_yaml.read_text())["clouds"][cloud]["auth"])


def swift_conn(live: LiveCloud, cloud: str) -> swiftclient.Connection:
    auth = cloud_auth(live, cloud)
    return swiftclient.Connection(
        authurl=auth["auth_url"], user=auth["username"], key=auth["password"], auth_version="3",
        os_options={"project_name": auth["project_name"], "user_domain_name": "Default",
                    "project_domain_name": "Default"}, retries=0)


def swift_env(live: LiveCloud, cloud: str) -> dict[str, str]:
    """The environment the ``swift`` command line authenticates with."""
    auth = cloud_auth(live, cloud)
    return {**os.environ, "OS_AUTH_URL": auth["auth_url"], "OS_USERNAME": auth["username"],
            "OS_PASSWORD": auth["password"], "OS_PROJECT_NAME": auth["project_name"],
            "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default", "OS_IDENTITY_API_VERSION": "3"}


@dataclass
class Http:
    """Raw HTTP against one project's account."""

    url: str  # .../v1/AUTH_<project_id>
    token: str

    def __call__(self, method: str, path: str = "", headers: dict[str, str] | None = None, token: bool = True,
                 **kw: Any) -> requests.Response:
        h = {"X-Auth-Token": self.token} if token else {}
        h.update(headers or {})
        return requests.request(method, self.url + path, headers=h, timeout=30, **kw)


def http_for(conn: Any) -> Http:
    return Http(conn.object_store.get_endpoint().rstrip("/"), conn.auth_token)


@pytest.fixture(scope="module")
def project(live: LiveCloud) -> tuple[Any, Http, str]:
    """A project of the module's own: its sdk connection, raw HTTP and cloud name in clouds.yaml."""
    conn = live.project_conn("obj")
    return conn, http_for(conn), conn.config.name
