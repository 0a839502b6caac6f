"""Image test fixtures: a qcow2 file, raw HTTP helpers, and a second cloud with non-default image settings."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

PROTECTIONS = """\
[^x_billing_.*]
create = admin
read = admin,member
update = admin
delete = admin

[.*]
create = @
read = @
update = @
delete = @
"""


class Api:
    """Raw HTTP against the image endpoint with one user's token."""

    def __init__(self, live: LiveCloud, cloud: str) -> None:
        self.conn = live.conn(cloud)
        self.base = live.url("image")
        self.token = self.conn.auth_token
        self.project_id = self.conn.current_project_id

    def __call__(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        h = {"X-Auth-Token": self.token, **(headers or {})}
        return requests.request(method, self.base + path, headers=h, timeout=60, **kw)

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        r = self("POST", "/v2/images", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def upload(self, image_id: str, data: bytes, **headers: str) -> requests.Response:
        return self("PUT", f"/v2/images/{image_id}/file", data=data,
                    headers={"Content-Type": "application/octet-stream", **headers})

    def patch(self, image_id: str, ops: list[dict[str, Any]],
              media: str = "application/openstack-images-v2.1-json-patch") -> requests.Response:
        return self("PATCH", f"/v2/images/{image_id}", json=ops, headers={"Content-Type": media})

    def show(self, image_id: str) -> dict[str, Any]:
        r = self("GET", f"/v2/images/{image_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def admin_api(live: LiveCloud) -> Api:
    return Api(live, "admin")


@pytest.fixture(scope="session")
def demo_api(live: LiveCloud) -> Api:
    return Api(live, "demo")


@pytest.fixture(scope="session")
def alt_api(live: LiveCloud) -> Api:
    return Api(live, "alt_demo")


@pytest.fixture(scope="session")
def qcow2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("disk") / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(path), "64M"], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def special(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    """A cloud with two stores, small quotas, property protections and no image cache (``[image]`` settings)."""
    state = Path(tmp_path_factory.mktemp("special"))
    rules = state / "property-protections.conf"
    rules.write_text(PROTECTIONS)
    cloud = LiveCloud(state, image__stores="file,fast", image__default_store="file",
                      image__quota_image_count_total="4", image__quota_image_size_total="100000",
                      image__image_tag_quota="3", image__property_protection_file=str(rules),
                      image__image_cache_max_size="0")
    try:
        yield cloud
    finally:
        cloud.stop()
