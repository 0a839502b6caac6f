"""web-download and copy-image imports and the tasks API, through openstackclient, openstacksdk and HTTP,
against a cloud with two stores whose web-download rules allow one local aiohttp server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.image.conftest import Api
from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.api, pytest.mark.e2e]

DATA = os.urandom(200_000)


class Origin:
    """An aiohttp server on 127.0.0.1 in a thread of its own: the web the image service downloads from."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        app = web.Application()
        app.router.add_get("/disk.raw", _disk)
        app.router.add_get("/moved", _moved)
        app.router.add_get("/to-metadata", _to_metadata)
        self.runner = web.AppRunner(app)
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.base = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _disk(_request: web.Request) -> web.Response:
    return web.Response(body=DATA, content_type="application/octet-stream")


async def _moved(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/disk.raw")


async def _to_metadata(_request: web.Request) -> web.Response:
    raise web.HTTPFound("http://169.254.169.254/latest")


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    server = Origin()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    cloud = LiveCloud(Path(tmp_path_factory.mktemp("imports")), image__stores="file,fast",
                      image__web_download_allowed_hosts="127.0.0.1")
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(scope="module")
def admin(cloud: LiveCloud) -> Api:
    return Api(cloud, "admin")


@pytest.fixture(scope="module")
def demo(cloud: LiveCloud) -> Api:
    return Api(cloud, "demo")


def _wait(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def _settled(api: Api, image_id: str) -> dict[str, Any]:
    """The image once its import ended (no store left to import to)."""
    return _wait(lambda: (lambda i: i if i["status"] not in ("importing",) and
                          not i.get("os_glance_importing_to_stores") else None)(api.show(image_id)))


def test_import_info_lists_the_methods(cloud: LiveCloud) -> None:
    info = cloud.cli_json("image", "import", "info")
    assert set(str(info["import-methods"]).replace("'", '"').split('"')) >= {"glance-direct", "web-download",
                                                                            "copy-image"}


def test_web_download_through_the_cli(cloud: LiveCloud, demo: Api, origin: Origin) -> None:
    image = demo.create(name="from-the-web")
    cloud.cli("image", "import", image["id"], "--method", "web-download", "--uri", f"{origin.base}/moved",
              cloud="demo")
    shown = _settled(demo, image["id"])
    assert shown["status"] == "active", shown
    assert shown["size"] == len(DATA) and shown["checksum"] == hashlib.md5(DATA).hexdigest()
    assert shown["os_glance_failed_import"] == "" and shown["stores"] == "file"
    assert demo("GET", f"/v2/images/{image['id']}/file").content == DATA
    tasks = demo("GET", f"/v2/images/{image['id']}/tasks").json()["tasks"]
    assert [t["status"] for t in tasks] == ["success"]
    assert tasks[0]["input"]["import_req"]["method"]["uri"].endswith("/moved")


def test_web_download_refusals(demo: Api, origin: Origin) -> None:
    image = demo.create(name="refused")
    path = f"/v2/images/{image['id']}/import"
    for uri in ("file:///etc/passwd", "ftp://127.0.0.1/x", "http://10.0.0.1/disk", "http://169.254.169.254/",
                "http://[::1]:8080/", "http://user:pw@127.0.0.1/x", "http://localhost:1/x"):
        r = demo("POST", path, json={"method": {"name": "web-download", "uri": uri}},
                 headers={"Accept": "application/json"})
        assert r.status_code == 400, (uri, r.text)
        assert "does not pass filtering" in r.json()["message"]
    r = demo("POST", path, json={"method": {"name": "web-download"}}, headers={"Accept": "application/json"})
    assert r.status_code == 400 and "URI" in r.json()["message"]
    assert demo.show(image["id"])["status"] == "queued"
    # Allowed itself, but redirecting to the metadata address: the import fails, the image goes back to queued.
    r = demo("POST", path, json={"method": {"name": "web-download", "uri": f"{origin.base}/to-metadata"}})
    assert r.status_code == 202, r.text
    shown = _settled(demo, image["id"])
    assert shown["status"] == "queued" and shown["os_glance_failed_import"] == "file"
    tasks = demo("GET", f"/v2/images/{image['id']}/tasks").json()["tasks"]
    assert tasks[-1]["status"] == "failure" and "169.254.169.254" in tasks[-1]["message"]
    # A missing file: failure too, and nothing left in the staging area.
    r = demo("POST", path, json={"method": {"name": "web-download", "uri": f"{origin.base}/nope"}})
    assert r.status_code == 202
    assert _settled(demo, image["id"])["status"] == "queued"
    assert "404" in demo("GET", f"/v2/images/{image['id']}/tasks").json()["tasks"][-1]["message"]
    # Only a queued image takes web-download.
    assert demo.upload(image["id"], b"data").status_code == 204
    r = demo("POST", path, json={"method": {"name": "web-download", "uri": f"{origin.base}/disk.raw"}})
    assert r.status_code == 409
    demo("DELETE", f"/v2/images/{image['id']}")


def test_copy_image_to_another_store(cloud: LiveCloud, admin: Api, demo: Api) -> None:
    image = demo.create(name="to-copy")
    assert demo.upload(image["id"], DATA[:5000]).status_code == 204
    body = {"method": {"name": "copy-image"}, "stores": ["fast"]}
    # copy-image is an operator's action (Glance's copy_image rule); others' images stay hidden.
    r = demo("POST", f"/v2/images/{image['id']}/import", json=body, headers={"Accept": "application/json"})
    assert r.status_code == 403, r.text
    cloud.cli("image", "import", image["id"], "--method", "copy-image", "--store", "fast")
    shown = _settled(demo, image["id"])
    assert shown["stores"] == "file,fast" and shown["status"] == "active"
    assert shown["os_glance_failed_import"] == ""
    assert len(list((cloud.config.state_dir / "images" / "fast").glob(f"{image['id']}.*"))) == 1
    # Both copies serve the data: drop the first, read from the second.
    assert admin("DELETE", f"/v2/stores/file/{image['id']}").status_code == 204
    assert demo("GET", f"/v2/images/{image['id']}/file").content == DATA[:5000]
    # Nothing left to copy to, an unknown store, a queued image.
    assert admin("POST", f"/v2/images/{image['id']}/import", json=body).status_code == 409
    r = admin("POST", f"/v2/images/{image['id']}/import", json={"method": {"name": "copy-image"}, "stores": ["x"]})
    assert r.status_code == 409
    queued = demo.create(name="empty")
    assert admin("POST", f"/v2/images/{queued['id']}/import", json=body).status_code == 409
    r = admin("POST", f"/v2/images/{queued['id']}/import", json={"method": {"name": "teleport"}})
    assert r.status_code == 400
    tasks = admin("GET", f"/v2/images/{image['id']}/tasks").json()["tasks"]
    assert [t["status"] for t in tasks] == ["success"] and tasks[0]["result"]["stores"] == ["fast"]
    for i in (image, queued):
        demo("DELETE", f"/v2/images/{i['id']}")


def test_copy_image_all_stores_with_the_sdk(cloud: LiveCloud, demo: Api) -> None:
    conn = cloud.conn("admin")
    image = conn.image.create_image(name="sdk-copy", data=b"x" * 3000, disk_format="raw", container_format="bare",
                                    allow_duplicates=True)
    conn.image.import_image(image, method="copy-image", all_stores=True, all_stores_must_succeed=False)
    shown = _settled(Api(cloud, "admin"), image.id)
    assert shown["stores"] == "file,fast"
    conn.image.delete_image(image)
    assert not list((cloud.config.state_dir / "images" / "fast").glob(f"{image.id}.*"))


def test_tasks_api(cloud: LiveCloud, admin: Api, demo: Api, origin: Origin) -> None:
    image, second = demo.create(name="tasked"), demo.create(name="tasked-too")
    for i in (image, second):  # two tasks at least, whatever else ran on this cloud
        demo("POST", f"/v2/images/{i['id']}/import",
             json={"method": {"name": "web-download", "uri": f"{origin.base}/disk.raw"}})
        _settled(demo, i["id"])
    listed = cloud.cli_json("image", "task", "list")
    mine = [t for t in listed if t["ID"] in
            {t["id"] for t in demo("GET", f"/v2/images/{image['id']}/tasks").json()["tasks"]}]
    assert len(mine) == 1 and mine[0]["Status"] == "success"
    shown = cloud.cli_json("image", "task", "show", mine[0]["ID"])
    assert shown["type"] == "api_image_import" and shown["result"]["image_id"] == image["id"]
    body = admin("GET", "/v2/tasks?limit=1&sort_key=created_at&sort_dir=asc").json()
    assert len(body["tasks"]) == 1 and "input" not in body["tasks"][0] and "next" in body
    assert admin("GET", body["next"].replace("/v2/tasks", "/v2/tasks", 1)).status_code == 200
    assert admin("GET", "/v2/tasks?status=success").json()["tasks"]
    # The tasks API is for admins by default (Glance's tasks_api_access).
    assert demo("GET", "/v2/tasks", headers={"Accept": "application/json"}).status_code == 403
    assert demo("GET", f"/v2/tasks/{mine[0]['ID']}").status_code == 403
    r = cloud.cli("image", "task", "list", cloud="demo", check=False)
    assert r.returncode != 0 and "403" in r.stderr
    # Bad input: 400 in Glance's format; unknown ids: 404.
    for query in ("status=nope", "type=nope", "sort_key=owner", "sort_dir=up", "limit=-1", "marker=nope"):
        r = admin("GET", f"/v2/tasks?{query}", headers={"Accept": "application/json"})
        assert r.status_code == 400 and r.json()["code"].startswith("400"), (query, r.text)
    assert admin("GET", "/v2/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    for i in (image, second):
        demo("DELETE", f"/v2/images/{i['id']}")


def test_create_import_task(admin: Api, demo: Api, origin: Origin) -> None:
    body = {"type": "import", "input": {"import_from": f"{origin.base}/disk.raw", "import_from_format": "raw",
                                        "image_properties": {"name": "by-task", "disk_format": "raw",
                                                             "container_format": "bare"}}}
    r = admin("POST", "/v2/tasks", json=body)
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["type"] == "import" and task["input"]["import_from"].endswith("/disk.raw")
    done = _wait(lambda: (lambda t: t if t["status"] in ("success", "failure") else None)(
        admin("GET", f"/v2/tasks/{task['id']}").json()))
    assert done["status"] == "success", done
    image = admin.show(done["image_id"])
    assert image["name"] == "by-task" and image["size"] == len(DATA)
    assert demo("POST", "/v2/tasks", json=body).status_code == 403
    for bad in ({"type": "import"}, {"type": "import", "input": {"import_from": "x"}},
                {"type": "api_image_import", "input": body["input"]}, [1]):
        assert admin("POST", "/v2/tasks", json=bad).status_code == 400, bad
    no_format = {"type": "import", "input": {**body["input"], "image_properties": {"name": "x"}}}
    assert admin("POST", "/v2/tasks", json=no_format).status_code == 400
    refused = {"type": "import", "input": {**body["input"], "import_from": "http://10.1.1.1/x"}}
    assert admin("POST", "/v2/tasks", json=refused).status_code == 400
    assert not [i for i in admin("GET", "/v2/images").json()["images"] if i["name"] == "x"]
    admin("DELETE", f"/v2/images/{image['id']}")


LOC_PATCH = "application/openstack-images-v2.1-json-patch"


def test_locations_for_admins(cloud: LiveCloud, admin: Api, demo: Api) -> None:
    image = demo.create(name="located")
    assert demo.upload(image["id"], b"L" * 4096).status_code == 204
    assert "locations" not in demo.show(image["id"])  # members never see where the data is
    body = {"method": {"name": "copy-image"}, "stores": ["fast"]}
    assert admin("POST", f"/v2/images/{image['id']}/import", json=body).status_code == 202
    _settled(admin, image["id"])
    locations = admin.show(image["id"])["locations"]
    assert [loc["metadata"]["store"] for loc in locations] == ["file", "fast"]
    assert all(loc["url"].startswith("file:///") and Path(loc["url"][7:]).is_file() for loc in locations)
    fast_copy = Path(locations[1]["url"][7:])
    # Removing one: admins only; it deletes the data; the last one cannot go.
    remove = [{"op": "remove", "path": "/locations/1"}]
    assert demo.patch(image["id"], remove).status_code == 403
    r = admin.patch(image["id"], remove)
    assert r.status_code == 200, r.text
    assert [loc["metadata"]["store"] for loc in r.json()["locations"]] == ["file"] and r.json()["stores"] == "file"
    assert not fast_copy.exists()
    assert admin.patch(image["id"], [{"op": "remove", "path": "/locations/0"}]).status_code == 403
    for bad in ([{"op": "remove", "path": "/locations/5"}], [{"op": "replace", "path": "/locations", "value": []}],
                [{"op": "remove", "path": "/locations/-"}], [{"op": "add", "path": "/locations/-", "value": "x"}],
                [{"op": "remove", "path": "/locations/0"}, {"op": "add", "path": "/name", "value": "n"}]):
        r = admin.patch(image["id"], bad)
        assert r.status_code == 400, (bad, r.text)
    demo("DELETE", f"/v2/images/{image['id']}")


def test_add_location_attaches_data_in_a_store(cloud: LiveCloud, admin: Api, demo: Api) -> None:
    data = os.urandom(8192)
    placed = cloud.config.state_dir / "images" / "fast" / f"placed-{os.getpid()}.raw"
    placed.write_bytes(data)
    queued = admin.create(name="attach")
    add = [{"op": "add", "path": "/locations/-", "value": {"url": f"file://{placed}", "metadata": {}}}]
    assert demo.patch(queued["id"], add).status_code == 404  # the admin's private image: not theirs to see
    r = admin.patch(queued["id"], add)
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["status"] == "active" and shown["size"] == len(data) and shown["stores"] == "fast"
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert admin("GET", f"/v2/images/{queued['id']}/file").content == data
    other = admin.create(name="attach-again")
    assert admin.patch(other["id"], add).status_code == 409  # that data belongs to an image already
    for url in (f"file://{placed.parent}/missing", "file:///etc/passwd", "http://example.com/x",
                f"file://{placed.parent}/../file/x", "tinystack://nostore/x"):
        value = [{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}]
        r = admin.patch(other["id"], value)
        assert r.status_code == 400, (url, r.text)
    assert admin.show(other["id"])["status"] == "queued"
    # A member of the owning project is refused by the rule (403).
    mine = demo.create(name="mine")
    r = demo.patch(mine["id"], [{"op": "add", "path": "/locations/-", "value": {"url": f"file://{placed}"}}])
    assert r.status_code == 403
    for i in (queued, other):
        admin("DELETE", f"/v2/images/{i['id']}")
    demo("DELETE", f"/v2/images/{mine['id']}")
    assert not placed.exists()  # deleting the image deleted the data it was given
