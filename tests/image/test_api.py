"""The Glance v2 API through openstacksdk and raw HTTP: what Tempest's image tests and clients rely on."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import pytest

from tests.image.conftest import Api
from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.api, pytest.mark.e2e]


def test_version_document(live: LiveCloud) -> None:
    import requests

    r = requests.get(live.url("image") + "/", timeout=10)
    assert r.status_code == 300
    versions = r.json()["versions"]
    assert versions[0]["status"] == "CURRENT" and {"v2.0", "v2.12"} <= {v["id"] for v in versions}
    assert all({"id", "links", "status"} <= set(v) for v in versions)
    assert requests.get(live.url("image") + "/versions", timeout=10).status_code == 200
    assert r.headers["x-openstack-request-id"].startswith("req-")


def test_schemas(demo_api: Api) -> None:
    for name in ("image", "images", "member", "members", "task", "tasks"):
        r = demo_api("GET", f"/v2/schemas/{name}")
        assert r.status_code == 200 and r.json()["name"] == name
    image = demo_api("GET", "/v2/schemas/image").json()
    assert "qcow2" in image["properties"]["disk_format"]["enum"]
    assert image["additionalProperties"] == {"type": "string"}
    assert demo_api("GET", "/v2/schemas/nope").status_code == 404


def test_register_upload_get_file(demo_api: Api) -> None:
    ramdisk = "00000000-1111-2222-3333-444455556666"
    image = demo_api.create(name="reg", visibility="private", ramdisk_id=ramdisk)
    assert image["status"] == "queued" and image["visibility"] == "private"
    assert image["checksum"] is None and image["os_hash_algo"] is None
    empty = demo_api("GET", f"/v2/images/{image['id']}/file")
    assert empty.status_code == 204 and empty.content == b""
    data = os.urandom(1024)
    r = demo_api.upload(image["id"], data)
    assert r.status_code == 204, r.text
    shown = demo_api.show(image["id"])
    assert shown["size"] == 1024 and shown["ramdisk_id"] == ramdisk and shown["status"] == "active"
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest() and shown["stores"] == "file"
    got = demo_api("GET", f"/v2/images/{image['id']}/file")
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-MD5"] == shown["checksum"]
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


def test_download_ranges(demo_api: Api) -> None:
    image = demo_api.create(name="ranges")
    data = bytes(range(256)) * 40
    assert demo_api.upload(image["id"], data).status_code == 204
    path = f"/v2/images/{image['id']}/file"
    r = demo_api("GET", path, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert "Content-MD5" not in r.headers
    assert demo_api("GET", path, headers={"Range": "bytes=-5"}).content == data[-5:]
    assert demo_api("GET", path, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    demo_api("DELETE", f"/v2/images/{image['id']}")


def test_sdk_create_download_update(live: LiveCloud) -> None:
    conn = live.conn("demo")
    data = os.urandom(300_000)
    image = conn.image.create_image(name="sdk-img", data=data, disk_format="raw", container_format="bare",
                                    allow_duplicates=True)
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.size == len(data) and image.virtual_size == len(data)
    assert conn.image.download_image(image).content == data
    conn.image.update_image(image, name="sdk-renamed", os_distro="cirros", min_ram=64)
    image = conn.image.get_image(image.id)
    assert (image.name, image.os_distro, image.min_ram) == ("sdk-renamed", "cirros", 64)
    conn.image.add_tag(image, "one")
    conn.image.remove_tag(image, "one")
    assert conn.image.get_image(image.id).tags == []
    conn.image.delete_image(image)
    assert conn.image.find_image(image.id) is None


def test_list_filters_sort_and_pages(demo_api: Api) -> None:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    ids = []
    for i, (disk, size) in enumerate((("raw", 1500), ("qcow2", 2500), ("vhd", 3500))):
        image = demo_api.create(name=f"list-{i}", disk_format=disk, visibility="private", tags=[tag])
        assert demo_api.upload(image["id"], os.urandom(size)).status_code == 204
        ids.append(image["id"])
    hidden = demo_api.create(name="hidden", os_hidden=True, tags=[tag])

    def listed(**params: object) -> list[dict[str, object]]:
        r = demo_api("GET", "/v2/images", params={"tag": tag, **params})
        assert r.status_code == 200, r.text
        return r.json()["images"]  # type: ignore[no-any-return]

    assert {i["id"] for i in listed()} == set(ids)
    assert [i["id"] for i in listed(disk_format="qcow2")] == [ids[1]]
    assert [i["id"] for i in listed(size=2500)] == [ids[1]]
    assert {i["id"] for i in listed(size_min=2000, size_max=4000)} == {ids[1], ids[2]}
    assert [i["size"] for i in listed(sort="size:desc")] == [3500, 2500, 1500]
    assert [i["size"] for i in listed(sort_key="size", sort_dir="asc")] == [1500, 2500, 3500]
    assert [i["id"] for i in listed(name="in:list-0,list-2", sort="name:asc")] == [ids[0], ids[2]]
    assert [i["id"] for i in listed(os_hidden="true")] == [hidden["id"]]
    assert {i["id"] for i in listed(visibility="private")} == set(ids)
    assert listed(status="queued") == []
    page = demo_api("GET", "/v2/images", params={"tag": tag, "limit": 2, "sort": "name:asc"}).json()
    assert [i["name"] for i in page["images"]] == ["list-0", "list-1"]
    rest = demo_api("GET", page["next"]).json()
    assert [i["name"] for i in rest["images"]] == ["list-2"] and "next" not in rest
    assert demo_api("GET", "/v2/images", params={"marker": str(uuid.uuid4())}).status_code == 400
    assert demo_api("GET", "/v2/images", params={"sort_key": "bogus"}).status_code == 400
    assert demo_api("GET", "/v2/images", params={"limit": "x"}).status_code == 400
    for image_id in [*ids, hidden["id"]]:
        demo_api("DELETE", f"/v2/images/{image_id}")


def test_tags_endpoints(demo_api: Api) -> None:
    image = demo_api.create(name="tags")
    path = f"/v2/images/{image['id']}/tags"
    assert demo_api("PUT", f"{path}/red").status_code == 204
    assert demo_api("PUT", f"{path}/red").status_code == 204
    assert demo_api.show(image["id"])["tags"] == ["red"]
    assert demo_api("DELETE", f"{path}/red").status_code == 204
    assert demo_api("DELETE", f"{path}/red").status_code == 404
    assert demo_api("PUT", f"/v2/images/{uuid.uuid4()}/tags/red").status_code == 404
    demo_api("DELETE", f"/v2/images/{image['id']}")


def test_deactivate_blocks_download_for_users(demo_api: Api, admin_api: Api) -> None:
    image = demo_api.create(name="deact")
    demo_api.upload(image["id"], b"x" * 100)
    path = f"/v2/images/{image['id']}"
    assert demo_api("POST", f"{path}/actions/deactivate").status_code == 204
    assert demo_api.show(image["id"])["status"] == "deactivated"
    assert demo_api("GET", f"{path}/file").status_code == 403
    assert admin_api("GET", f"{path}/file").status_code == 200
    assert demo_api("POST", f"{path}/actions/reactivate").status_code == 204
    assert demo_api("GET", f"{path}/file").content == b"x" * 100
    queued = demo_api.create(name="q")
    assert demo_api("POST", f"/v2/images/{queued['id']}/actions/deactivate").status_code == 403
    demo_api("DELETE", path)
    demo_api("DELETE", f"/v2/images/{queued['id']}")


def test_glance_direct_import(demo_api: Api) -> None:
    info = demo_api("GET", "/v2/info/import").json()
    assert info["import-methods"]["value"] == ["glance-direct", "web-download", "copy-image"]
    stores = demo_api("GET", "/v2/info/stores").json()["stores"]
    assert stores == [{"id": "file", "description": "file store file", "default": "true"},
                      {"id": "swift", "description": "swift store swift"}]
    image = demo_api.create(name="imported")
    data = os.urandom(5000)
    r = demo_api("PUT", f"/v2/images/{image['id']}/stage", data=data,
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    staged = demo_api.show(image["id"])
    assert staged["status"] == "uploading" and staged["size"] == 5000
    r = demo_api("POST", f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}})
    assert r.status_code == 202, r.text
    request_id = r.headers["x-openstack-request-id"]
    for _ in range(100):
        shown = demo_api.show(image["id"])
        if shown["status"] == "active":
            break
        time.sleep(0.05)
    assert shown["status"] == "active" and shown["checksum"] == hashlib.md5(data).hexdigest()
    assert demo_api("GET", f"/v2/images/{image['id']}/file").content == data
    tasks = demo_api("GET", f"/v2/images/{image['id']}/tasks").json()["tasks"]
    assert [(t["status"], t["request_id"]) for t in tasks] == [("success", request_id)]
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"
    r = demo_api("POST", f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}})
    assert r.status_code == 409
    demo_api("DELETE", f"/v2/images/{image['id']}")


def test_sdk_owner_shares_with_alt(live: LiveCloud) -> None:
    demo, alt = live.conn("demo"), live.conn("alt_demo")
    image = demo.image.create_image(name="sdk-shared", data=b"abc" * 100, disk_format="raw",
                                    container_format="bare", visibility="shared", allow_duplicates=True)
    demo.image.add_member(image, member_id=alt.current_project_id)
    assert image.id not in {i.id for i in alt.image.images()}
    assert [i.id for i in alt.image.images(visibility="shared", member_status="pending")] == [image.id]
    alt.image.update_member(alt.current_project_id, image, status="accepted")
    assert image.id in {i.id for i in alt.image.images()}
    assert alt.image.download_image(image).content == b"abc" * 100
    assert [m.member_id for m in alt.image.members(image)] == [alt.current_project_id]
    alt.image.update_member(alt.current_project_id, image, status="rejected")
    assert image.id not in {i.id for i in alt.image.images()}
    demo.image.delete_image(image)


def test_usage_and_stores_detail(demo_api: Api, admin_api: Api) -> None:
    usage = demo_api("GET", "/v2/info/usage").json()["usage"]
    assert usage["image_count_total"]["limit"] == 100
    assert demo_api("GET", "/v2/info/stores/detail").status_code == 403
    detail = admin_api("GET", "/v2/info/stores/detail").json()["stores"]
    assert detail[0]["type"] == "file" and "data_dir" in detail[0]["properties"]
