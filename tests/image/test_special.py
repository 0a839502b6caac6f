"""Settings beyond the defaults: several stores, small quotas, property protections."""

from __future__ import annotations

import time

import pytest

from tests.image.conftest import Api
from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.api, pytest.mark.e2e]


@pytest.fixture(scope="module")
def admin(special: LiveCloud) -> Api:
    return Api(special, "admin")


@pytest.fixture(scope="module")
def demo(special: LiveCloud) -> Api:
    return Api(special, "demo")


def _cleanup(api: Api) -> None:
    for image in api("GET", "/v2/images").json()["images"]:
        if image["owner"] == api.project_id:
            api.patch(image["id"], [{"op": "replace", "path": "/protected", "value": False}])
            api("DELETE", f"/v2/images/{image['id']}")


def test_stores_and_store_header(special: LiveCloud, demo: Api, admin: Api) -> None:
    stores = demo("GET", "/v2/info/stores").json()["stores"]
    assert [(s["id"], s.get("default")) for s in stores] == [("file", "true"), ("fast", None)]
    image = demo.create(name="fast-one")
    assert demo.upload(image["id"], b"quick", **{"X-Image-Meta-Store": "fast"}).status_code == 204
    assert demo.show(image["id"])["stores"] == "fast"
    assert len(list((special.config.state_dir / "images" / "fast").glob(f"{image['id']}.*"))) == 1
    assert demo("GET", f"/v2/images/{image['id']}/file").content == b"quick"
    staged = demo.create(name="everywhere")
    demo("PUT", f"/v2/images/{staged['id']}/stage", data=b"z" * 1000,
         headers={"Content-Type": "application/octet-stream"})
    r = demo("POST", f"/v2/images/{staged['id']}/import", json={"method": {"name": "glance-direct"},
                                                                 "all_stores": True})
    assert r.status_code == 202
    for _ in range(100):
        if demo.show(staged["id"])["status"] == "active":
            break
        time.sleep(0.05)
    assert demo.show(staged["id"])["stores"] == "file,fast"
    assert admin("DELETE", f"/v2/stores/fast/{staged['id']}").status_code == 204
    assert demo.show(staged["id"])["stores"] == "file"
    assert admin("DELETE", f"/v2/stores/file/{staged['id']}").status_code == 403
    _cleanup(demo)


def test_count_quota_is_413(demo: Api) -> None:
    _cleanup(demo)
    for i in range(4):
        demo.create(name=f"q{i}")
    r = demo("POST", "/v2/images", json={"name": "one-too-many"})
    assert r.status_code == 413 and "image_count_total" in r.text
    usage = demo("GET", "/v2/info/usage").json()["usage"]["image_count_total"]
    assert usage == {"usage": 4, "limit": 4}
    _cleanup(demo)


def test_size_quota_is_413_and_leaves_nothing(special: LiveCloud, demo: Api) -> None:
    _cleanup(demo)
    big = demo.create(name="big")
    assert demo.upload(big["id"], b"x" * 150_000).status_code == 413
    assert demo.show(big["id"])["status"] == "queued"
    chunked = demo("PUT", f"/v2/images/{big['id']}/file", data=iter([b"y" * 60_000] * 3),
                   headers={"Content-Type": "application/octet-stream"})
    assert chunked.status_code == 413
    assert demo.show(big["id"])["status"] == "queued"
    assert list((special.config.state_dir / "images" / "file" / ".partial").iterdir()) == []
    assert demo.upload(big["id"], b"x" * 90_000).status_code == 204
    other = demo.create(name="other")
    assert demo.upload(other["id"], b"x" * 20_000).status_code == 413
    _cleanup(demo)


def test_tag_quota(demo: Api) -> None:
    image = demo.create(name="tags", tags=["a", "b", "c"])
    assert demo("PUT", f"/v2/images/{image['id']}/tags/d").status_code == 413
    assert demo("POST", "/v2/images", json={"tags": ["1", "2", "3", "4"]}).status_code == 413
    _cleanup(demo)


def test_property_protections(demo: Api, admin: Api) -> None:
    r = demo("POST", "/v2/images", json={"name": "bill", "x_billing_code": "42"})
    assert r.status_code == 403
    image = admin.create(name="billed", x_billing_code="42", visibility="public")
    assert demo.show(image["id"])["x_billing_code"] == "42"
    own = demo.create(name="own", hw_disk_bus="virtio")
    assert demo.patch(own["id"], [{"op": "add", "path": "/x_billing_code", "value": "1"}]).status_code == 403
    admin.patch(own["id"], [{"op": "add", "path": "/x_billing_code", "value": "1"}])
    assert demo.patch(own["id"], [{"op": "replace", "path": "/x_billing_code", "value": "2"}]).status_code == 403
    assert demo.patch(own["id"], [{"op": "remove", "path": "/x_billing_code"}]).status_code == 403
    ok = demo.patch(own["id"], [{"op": "replace", "path": "/hw_disk_bus", "value": "scsi"}])
    assert ok.status_code == 200 and ok.json()["x_billing_code"] == "1"
    _cleanup(demo)
    admin("DELETE", f"/v2/images/{image['id']}")
