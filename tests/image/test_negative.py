"""Bad input and forbidden access get Glance's status codes, and failed uploads leave nothing behind."""

from __future__ import annotations

import html
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.image.conftest import Api
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = [pytest.mark.api, pytest.mark.e2e]
V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"


def _wait_status(api: Api, image_id: str, status: str) -> dict[str, object]:
    for _ in range(200):
        shown = api.show(image_id)
        if shown["status"] == status:
            return shown
        time.sleep(0.05)
    raise AssertionError(f"image {image_id} stayed {shown['status']}, not {status}")


def _partials(live: LiveCloud) -> list[Path]:
    return list((live.config.state_dir / "images" / "file" / ".partial").iterdir())


def test_unknown_formats_are_400(demo_api: Api) -> None:
    r = demo_api("POST", "/v2/images", json={"name": "x", "disk_format": "wrong", "container_format": "bare"})
    assert r.status_code == 400 and "disk_format" in r.text
    assert demo_api("POST", "/v2/images", json={"container_format": "wrong"}).status_code == 400
    assert demo_api("POST", "/v2/images", json={"min_ram": -1}).status_code == 400
    assert demo_api("POST", "/v2/images", json={"hw_foo": 5}).status_code == 400
    assert demo_api("POST", "/v2/images", data=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400


def test_read_only_attributes_are_400_reserved_403(demo_api: Api) -> None:
    for body in ({"status": "active"}, {"size": 5}, {"checksum": "x"}, {"self": "/x"}, {"locations": []},
                 {"os_hash_value": "x"}, {"created_at": "2020-01-01T00:00:00Z"}):
        r = demo_api("POST", "/v2/images", json=body)
        assert r.status_code == 400 and "is read-only" in r.text, (body, r.text)
    for body in ({"os_glance_foo": "bar"}, {"deleted": "true"}):
        r = demo_api("POST", "/v2/images", json=body)
        assert r.status_code == 403 and "is reserved" in r.text, (body, r.text)
    image = demo_api.create(name="ro")
    for path in ("/status", "/checksum", "/id", "/size", "/os_hash_value", "/os_hash_algo", "/created_at",
                 "/direct_url", "/locations"):
        r = demo_api.patch(image["id"], [{"op": "replace", "path": path, "value": "x"}])
        assert r.status_code == 400, (path, r.text)
        assert f"Attribute '{path[1:]}' is read-only." in html.unescape(r.text), (path, r.text)
    r = demo_api.patch(image["id"], [{"op": "add", "path": "/os_glance_foo", "value": "x"}])
    assert r.status_code == 403 and "is reserved" in r.text, r.text
    assert demo_api.patch(image["id"], [{"op": "remove", "path": "/name"}]).status_code == 403
    assert demo_api.show(image["id"])["status"] == "queued"
    demo_api("DELETE", f"/v2/images/{image['id']}")


@pytest.mark.parametrize("ops", [
    {"op": "replace", "path": "/name", "value": "x"},
    [{"op": "move", "path": "/name", "value": "x"}],
    [{"path": "/name", "value": "x"}],
    [{"op": "replace", "value": "x"}],
    [{"op": "replace", "path": "name", "value": "x"}],
    [{"op": "replace", "path": "/a/b", "value": "x"}],
    [{"op": "replace", "path": "/name"}],
    [{"op": "replace", "path": "/min_ram", "value": "lots"}],
    [{"op": "replace", "path": "/visibility", "value": "everyone"}],
    [{"op": "add", "path": "/hw_prop", "value": 3}],
    ["replace"],
])
def test_bad_json_patch_is_400(demo_api: Api, ops: object) -> None:
    image = demo_api.create(name="patchme")
    r = demo_api("PATCH", f"/v2/images/{image['id']}", json=ops, headers={"Content-Type": V21})
    assert r.status_code == 400, r.text
    demo_api("DELETE", f"/v2/images/{image['id']}")


def test_patch_semantics(demo_api: Api) -> None:
    image = demo_api.create(name="p")
    r = demo_api("PATCH", f"/v2/images/{image['id']}", json=[], headers={"Content-Type": "application/json"})
    assert r.status_code == 415 and "openstack-images-v2.1-json-patch" in r.headers["Accept-Patch"]
    assert demo_api.patch(image["id"], [{"op": "replace", "path": "/nothere", "value": "x"}]).status_code == 409
    assert demo_api.patch(image["id"], [{"op": "remove", "path": "/nothere"}]).status_code == 409
    ok = demo_api.patch(image["id"], [{"add": "/os_distro", "value": "cirros"}, {"replace": "/name", "value": "n"}],
                        media=V20)
    assert ok.status_code == 200 and ok.json()["os_distro"] == "cirros" and ok.json()["name"] == "n"
    assert demo_api.patch(image["id"], [{"add": "/os_distro", "value": "again"}], media=V20).status_code == 409
    both = demo_api.patch(image["id"], [{"op": "add", "path": "/os_distro", "value": "debian"},
                                        {"op": "replace", "path": "/status", "value": "active"}])
    assert both.status_code == 400 and demo_api.show(image["id"])["os_distro"] == "cirros"
    tags = demo_api.patch(image["id"], [{"op": "replace", "path": "/tags", "value": ["a", "b", "a"]}])
    assert sorted(tags.json()["tags"]) == ["a", "b"]
    assert demo_api.patch(image["id"], [{"op": "replace", "path": "/owner", "value": "x"}]).status_code == 403
    assert demo_api.patch(image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}]).status_code == 403
    demo_api.upload(image["id"], b"data")
    fmt = demo_api.patch(image["id"], [{"op": "replace", "path": "/disk_format", "value": "qcow2"}])
    assert fmt.status_code == 403
    demo_api("DELETE", f"/v2/images/{image['id']}")


def test_upload_rules(demo_api: Api) -> None:
    image = demo_api.create(name="up")
    assert demo_api.upload(image["id"], b"one").status_code == 204
    assert demo_api.upload(image["id"], b"two").status_code == 409
    assert demo_api("GET", f"/v2/images/{image['id']}/file").content == b"one"
    bare = demo_api("POST", "/v2/images", json={"name": "noformat"}).json()
    assert demo_api.upload(bare["id"], b"x").status_code == 400
    assert demo_api.show(bare["id"])["status"] == "queued"
    wrong_type = demo_api("PUT", f"/v2/images/{bare['id']}/file", data=b"x", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    queued = demo_api.create(name="q")
    short = demo_api.upload(queued["id"], b"x" * 10, **{"X-OpenStack-Image-Size": "20"})
    assert short.status_code == 400
    assert demo_api.show(queued["id"])["status"] == "queued"
    assert demo_api.upload(queued["id"], b"x", **{"X-Image-Meta-Store": "nowhere"}).status_code == 400
    for i in (image, bare, queued):
        demo_api("DELETE", f"/v2/images/{i['id']}")


@pytest.mark.parametrize("chunked", [False, True])
def test_interrupted_upload_returns_to_queued(live: LiveCloud, demo_api: Api, chunked: bool) -> None:
    image = demo_api.create(name="cut")
    url = urlparse(live.url("image"))
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: 100000000\r\n"
    body = b"%x\r\n%s\r\n" % (1 << 20, b"x" * (1 << 20)) if chunked else b"x" * (3 << 20)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(b"PUT /v2/images/%s/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n"
                     b"Content-Type: application/octet-stream\r\n%s\r\n" % (image["id"].encode(),
                                                                          demo_api.token.encode(), framing))
        sock.sendall(body)
        # Cut the connection only once the upload has begun, so that there is an upload to interrupt.
        wait_for(lambda: demo_api.show(image["id"])["status"] == "saving", 10, "the upload to begin")
    shown = _wait_status(demo_api, image["id"], "queued")
    assert shown["size"] is None and shown["checksum"] is None
    for _ in range(50):
        if not _partials(live):
            break
        time.sleep(0.05)
    assert _partials(live) == []
    assert demo_api.upload(image["id"], b"whole").status_code == 204
    demo_api("DELETE", f"/v2/images/{image['id']}")


def test_unsafe_qcow2_is_refused(demo_api: Api, tmp_path: Path) -> None:
    bad = tmp_path / "backed.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd", "-u", str(bad), "1G"],
                   check=True, capture_output=True)
    image = demo_api.create(name="evil", disk_format="qcow2")
    r = demo_api.upload(image["id"], bad.read_bytes())
    assert r.status_code == 415 and "backing file" in r.text
    assert demo_api.show(image["id"])["status"] == "queued"
    demo_api("DELETE", f"/v2/images/{image['id']}")


def test_other_projects_private_image_is_404(demo_api: Api, alt_api: Api, admin_api: Api) -> None:
    for visibility in ("private", "shared"):
        image = demo_api.create(name="mine", visibility=visibility)
        demo_api.upload(image["id"], b"secret")
        path = f"/v2/images/{image['id']}"
        assert alt_api("GET", path).status_code == 404
        assert alt_api("GET", f"{path}/file").status_code == 404
        assert alt_api.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}]).status_code == 404
        assert alt_api("DELETE", path).status_code == 404
        assert alt_api("PUT", f"{path}/tags/x").status_code == 404
        assert image["id"] not in {i["id"] for i in alt_api("GET", "/v2/images").json()["images"]}
        assert admin_api("GET", path).status_code == 200
        demo_api("DELETE", path)


def test_missing_and_deleted_images_are_404(demo_api: Api) -> None:
    assert demo_api("GET", f"/v2/images/{uuid.uuid4()}").status_code == 404
    assert demo_api("DELETE", f"/v2/images/{uuid.uuid4()}").status_code == 404
    assert demo_api("GET", "/v2/images/").status_code == 404
    assert demo_api("DELETE", "/v2/images/").status_code == 404
    image = demo_api.create(name="gone")
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204
    r = demo_api("GET", f"/v2/images/{image['id']}")
    assert r.status_code == 404 and image["id"] in r.text
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 404
    assert demo_api("GET", "/v2/images", params={"visibility": "bogus"}).status_code == 400


def test_protected_delete_is_403(demo_api: Api) -> None:
    image = demo_api.create(name="prot", protected=True)
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 403
    demo_api.patch(image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


def test_member_rules(demo_api: Api, alt_api: Api) -> None:
    private = demo_api.create(name="priv", visibility="private")
    members = f"/v2/images/{private['id']}/members"
    assert demo_api("POST", members, json={"member": alt_api.project_id}).status_code == 403
    shared = demo_api.create(name="shr")
    members = f"/v2/images/{shared['id']}/members"
    assert demo_api("POST", members, json={}).status_code == 400
    assert demo_api("POST", members, json={"member": alt_api.project_id}).status_code == 200
    assert demo_api("POST", members, json={"member": alt_api.project_id}).status_code == 409
    mine = f"{members}/{alt_api.project_id}"
    assert demo_api("PUT", mine, json={"status": "accepted"}).status_code == 403
    assert alt_api("PUT", mine, json={"status": "maybe"}).status_code == 400
    assert alt_api("PUT", mine, json={"status": "accepted"}).json()["status"] == "accepted"
    assert alt_api("POST", members, json={"member": demo_api.project_id}).status_code == 403
    assert alt_api("DELETE", mine).status_code == 403
    assert alt_api("GET", f"{members}/{demo_api.project_id}").status_code == 404
    assert demo_api("DELETE", mine).status_code == 204
    assert alt_api("GET", f"/v2/images/{shared['id']}").status_code == 404
    for i in (private, shared):
        demo_api("DELETE", f"/v2/images/{i['id']}")


def test_errors_follow_accept_header(demo_api: Api) -> None:
    missing = f"/v2/images/{uuid.uuid4()}"
    plain = demo_api("GET", missing, headers={"Accept": "text/plain"})
    assert plain.headers["Content-Type"].startswith("text/plain") and plain.text.startswith("404 Not Found")
    as_json = demo_api("GET", missing, headers={"Accept": "application/json"})
    assert as_json.status_code == 404 and as_json.headers["x-openstack-request-id"].startswith("req-")
    body = as_json.json()
    assert body["code"] == "404 Not Found" and body["title"] == "Not Found" and "No image found" in body["message"]
    page = demo_api("GET", missing, headers={"Accept": "*/*"})
    assert page.headers["Content-Type"].startswith("text/html") and "<h1>404 Not Found</h1>" in page.text


@pytest.mark.parametrize(("accept", "kind"), [
    (None, "text/html"), ("*/*", "text/html"), ("application/json", "application/json"),
    ("text/html;q=0.5, application/json", "application/json"), ("text/*", "text/html"), ("", "text/plain"),
    ("application/xml", "text/plain"), ("application/json;q=0", "text/plain"),
    ("text/html;q=0.5, */*", "application/json"),
])
def test_error_body_choice(accept: str | None, kind: str) -> None:
    from tinystack.image.api.faults import choose

    assert choose(accept) == kind


def test_glance_fault_without_a_request_is_plain_text() -> None:
    """aiohttp's own errors (a malformed request line) come before any request: no Accept to follow."""
    from tinystack.core import errors
    from tinystack.image.api.faults import glance_fault

    out = glance_fault(errors.BadRequest("The request is not valid HTTP."), "req-x")
    assert out.status == 400 and out.content_type == "text/plain"
    assert out.text == "400 Bad Request\n\nThe request is not valid HTTP.\n"
