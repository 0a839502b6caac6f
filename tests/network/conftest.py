"""Networking test helpers: raw Neutron requests against the live cloud and unique names."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud


class Neutron:
    """Raw HTTP against the network API, to check status codes and the NeutronError shape."""

    def __init__(self, live: LiveCloud, cloud: str) -> None:
        self.conn = live.conn(cloud)
        self.url = live.url("network")
        self.project_id = self.conn.current_project_id

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"X-Auth-Token": self.conn.auth_token, "Content-Type": "application/json"}
        return requests.request(method, self.url + path, json=body, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def admin_api(live: LiveCloud) -> Neutron:
    return Neutron(live, "admin")


@pytest.fixture(scope="session")
def demo_api(live: LiveCloud) -> Neutron:
    return Neutron(live, "demo")


@pytest.fixture(scope="session")
def alt_api(live: LiveCloud) -> Neutron:
    return Neutron(live, "alt_demo")


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def neutron_error(resp: requests.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    err = resp.json()["NeutronError"]
    assert set(err) == {"type", "message", "detail"}
    assert err["message"]
    if kind is not None:
        assert err["type"] == kind, err
    return err  # type: ignore[no-any-return]
