"""Glance 2.17's location API: a service attaches data already in a store to a queued image, checked against
its validation_data, and lists an image's locations; nobody else may."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import requests
import yaml

from tests.image.conftest import Api
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def service_api(live: LiveCloud) -> Api:
    """Raw HTTP as the cloud's service user (roles service and admin in project service)."""
    creds = yaml.safe_load((live.config.state_dir / "service.yaml").read_text())
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": creds["username"], "password": creds["password"], "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": creds["project_name"], "domain": {"name": "Default"}}}}}
    r = requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=30)
    assert r.status_code == 201, r.text
    api = Api.__new__(Api)
    api.base, api.token, api.project_id = live.url("image"), r.headers["X-Subject-Token"], ""
    return api


def _stored(live: LiveCloud, data: bytes) -> str:
    """Data written straight into the swift store (as a service's own storage would hold it); its URL."""
    assert live.cloud.runtime is not None
    store = live.cloud.runtime.services["image"].stores["swift"]

    async def put() -> str:
        writer = store.writer("attached", len(data))
        await writer.write([data])
        return str(await writer.commit())

    return f"tinystack://swift/{live.call(put())}"


def _add(api: Api, image_id: str, body: Any) -> requests.Response:
    return api("POST", f"/v2/images/{image_id}/locations", json=body)


def test_version_217_current(live: LiveCloud) -> None:
    versions = requests.get(live.url("image") + "/versions", timeout=10).json()["versions"]
    assert [v["id"] for v in versions] == [f"v2.{minor}" for minor in range(17, -1, -1)]
    assert versions[0]["status"] == "CURRENT" and {v["status"] for v in versions[1:]} == {"SUPPORTED"}


def test_service_adds_location_with_validation(live: LiveCloud, service_api: Api) -> None:
    data = os.urandom(200 * 1024)
    url = _stored(live, data)
    image = service_api.create(name="from-location")
    wrong = {"url": url, "validation_data": {"os_hash_algo": "sha256", "os_hash_value": "ab" * 32}}
    r = _add(service_api, image["id"], wrong)
    assert r.status_code == 400 and service_api.show(image["id"])["status"] == "queued"
    good = {"url": url, "validation_data": {"os_hash_algo": "sha256",
                                            "os_hash_value": hashlib.sha256(data).hexdigest()}}
    assert _add(service_api, image["id"], good).status_code == 202
    shown = service_api.show(image["id"])
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest() and shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    listed = service_api("GET", f"/v2/images/{image['id']}/locations")
    assert listed.status_code == 200 and listed.json() == [{"url": url, "metadata": {"store": "swift"}}]
    # Only a queued image takes a location; a second one for an active image is refused.
    assert _add(service_api, image["id"], {"url": url}).status_code == 409
    got = service_api("GET", f"/v2/images/{image['id']}/file")
    assert got.content == data
    assert service_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


def test_bad_bodies_refused(live: LiveCloud, service_api: Api) -> None:
    image = service_api.create(name="bad-location")
    url = _stored(live, b"abc")
    for body in ({}, {"url": 3}, {"url": url, "extra": 1},
                 {"url": url, "validation_data": {"os_hash_algo": "sha512"}},
                 {"url": url, "validation_data": {"os_hash_algo": "crc32", "os_hash_value": "00"}},
                 {"url": url, "validation_data": {"os_hash_algo": "md5", "os_hash_value": "zz" * 16}},
                 {"url": url, "validation_data": {"os_hash_algo": "md5", "os_hash_value": "ab" * 8}},
                 {"url": "http://example.com/x.img"}, {"url": "tinystack://swift/nothing-here"}):
        r = _add(service_api, image["id"], body)
        assert r.status_code == 400, (body, r.text)
    assert service_api.show(image["id"])["status"] == "queued"
    assert service_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


def test_only_services_use_it(live: LiveCloud, demo_api: Api, admin_api: Api, service_api: Api) -> None:
    image = demo_api.create(name="mine")
    url = _stored(live, b"x" * 100)
    # A project member may not attach data, even to its own image; nor may it list locations.
    assert _add(demo_api, image["id"], {"url": url}).status_code == 403
    assert demo_api("GET", f"/v2/images/{image['id']}/locations").status_code == 403
    # Listing is for the service role: admin alone is not enough (Glance's fetch_image_location).
    assert admin_api("GET", f"/v2/images/{image['id']}/locations").status_code == 403
    # Another project's private image stays invisible to a member.
    other = live.project_conn("locs")
    r = requests.post(f"{live.url('image')}/v2/images/{image['id']}/locations", json={"url": url},
                      headers={"X-Auth-Token": other.auth_token}, timeout=30)
    assert r.status_code == 404
    assert demo_api.show(image["id"])["status"] == "queued"
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204
