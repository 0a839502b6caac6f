"""The swift image store against the session cloud's own object storage: uploads with ``X-Image-Meta-Store``,
glance-direct and copy-image imports into it, segmented large images, ranges, and deletion of the objects."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.image.conftest import Api
from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack.image.drivers.swift import SwiftOptions, SwiftStore

pytestmark = pytest.mark.api

MiB = 1024 * 1024


def _store(live: LiveCloud) -> SwiftStore:
    assert live.cloud.runtime is not None
    store = live.cloud.runtime.services["image"].stores["swift"]
    assert isinstance(store, SwiftStore)
    return store


def _objects(live: LiveCloud) -> set[str]:
    return set(live.call(_store(live).locations()))


def _segments(live: LiveCloud) -> list[dict[str, Any]]:
    store = _store(live)
    return list(live.call(store._listing(store.segments)))


@pytest.fixture
def small_segments(live: LiveCloud) -> Iterator[SwiftOptions]:
    """The session cloud's swift store with 1 MiB segments (and one-object uploads only up to 1 MiB)."""
    store = _store(live)
    saved = store.options
    store.options = SwiftOptions(saved.container, MiB, MiB)
    try:
        yield store.options
    finally:
        store.options = saved


def _keys(api: Api, image_id: str) -> list[str]:
    r = api("GET", f"/v2/images/{image_id}")
    assert r.status_code == 200
    return [loc["url"].rsplit("/", 1)[-1] for loc in r.json().get("locations", [])
            if loc["metadata"]["store"] == "swift"]


def test_stores_listed(demo_api: Api, admin_api: Api) -> None:
    stores = demo_api("GET", "/v2/info/stores").json()["stores"]
    assert [(s["id"], s.get("default")) for s in stores] == [("file", "true"), ("swift", None)]
    detail = {s["id"]: s for s in admin_api("GET", "/v2/info/stores/detail").json()["stores"]}
    assert detail["swift"]["type"] == "swift" and detail["swift"]["properties"]["container"] == "glance"


def test_upload_to_swift_round_trip(live: LiveCloud, demo_api: Api, admin_api: Api) -> None:
    data = os.urandom(300 * 1024)
    image = demo_api.create(name="in-swift")
    r = demo_api.upload(image["id"], data, **{"X-Image-Meta-Store": "swift"})
    assert r.status_code == 204, r.text
    shown = demo_api.show(image["id"])
    assert shown["stores"] == "swift" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    [key] = _keys(admin_api, image["id"])
    assert key.startswith(image["id"]) and key in _objects(live)
    conn = live.conn("demo")
    assert conn.image.download_image(image["id"]).content == data  # openstacksdk checks the MD5 too
    part = demo_api("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    conn.image.delete_image(image["id"])
    assert key not in _objects(live)


def test_unknown_store_refused(demo_api: Api) -> None:
    image = demo_api.create(name="nowhere")
    r = demo_api.upload(image["id"], b"x" * 10, **{"X-Image-Meta-Store": "nope"})
    assert r.status_code == 400 and demo_api.show(image["id"])["status"] == "queued"
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


def test_large_image_as_segments(live: LiveCloud, demo_api: Api, admin_api: Api,
                                 small_segments: SwiftOptions) -> None:
    data = os.urandom(3 * MiB + 12345)
    image = demo_api.create(name="segmented")
    r = demo_api.upload(image["id"], data, **{"X-Image-Meta-Store": "swift"})
    assert r.status_code == 204, r.text
    shown = demo_api.show(image["id"])
    assert shown["size"] == len(data) and shown["checksum"] == hashlib.md5(data).hexdigest()
    [key] = _keys(admin_api, image["id"])
    mine = sorted((s["name"], s["bytes"]) for s in _segments(live) if s["name"].startswith(f"{key}/"))
    assert [size for _, size in mine] == [MiB, MiB, MiB, 12345]
    whole = demo_api("GET", f"/v2/images/{image['id']}/file")
    assert whole.status_code == 200 and hashlib.md5(whole.content).hexdigest() == shown["checksum"]
    across = demo_api("GET", f"/v2/images/{image['id']}/file", headers={"Range": f"bytes={MiB - 10}-{2 * MiB + 9}"})
    assert across.status_code == 206 and across.content == data[MiB - 10:2 * MiB + 10]
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204
    assert key not in _objects(live)
    assert not [s for s in _segments(live) if s["name"].startswith(f"{key}/")]


def test_glance_direct_import_into_swift(live: LiveCloud, tmp_path: Path, admin_api: Api) -> None:
    data = os.urandom(2 * MiB + 1)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    conn = live.conn("demo")
    image = conn.image.create_image(name="imported-swift", filename=str(path), disk_format="raw",
                                    container_format="bare", use_import=True, stores=["swift"], wait=True)
    shown = wait_for(lambda: (i := conn.image.get_image(image.id)).status == "active" and i, 60, "import")
    assert admin_api.show(image.id)["stores"] == "swift" and shown.checksum == hashlib.md5(data).hexdigest()
    assert len(_keys(admin_api, image.id)) == 1
    assert conn.image.download_image(image.id).content == data
    conn.image.delete_image(image.id)


def test_copy_image_into_swift_then_drop_copy(live: LiveCloud, demo_api: Api, admin_api: Api,
                                              qcow2_file: Path) -> None:
    live.cli("image", "create", "--file", str(qcow2_file), "--disk-format", "qcow2", "--container-format", "bare",
             "copy-to-swift")
    image = live.cli_json("image", "show", "copy-to-swift")
    live.cli("image", "import", image["id"], "--method", "copy-image", "--store", "swift")
    shown = wait_for(lambda: (i := admin_api.show(image["id"]))["stores"] == "file,swift" and i, 60, "copy-image")
    [key] = _keys(admin_api, image["id"])
    got = admin_api("GET", f"/v2/images/{image['id']}/file")
    assert hashlib.md5(got.content).hexdigest() == shown["checksum"]
    live.cli("image", "delete", "--store", "swift", image["id"])
    assert admin_api.show(image["id"])["stores"] == "file" and key not in _objects(live)
    live.cli("image", "delete", image["id"])


def test_qcow2_in_swift_measured_and_checked(demo_api: Api, qcow2_file: Path, tmp_path: Path) -> None:
    image = demo_api.create(name="q-swift", disk_format="qcow2")
    r = demo_api.upload(image["id"], qcow2_file.read_bytes(), **{"X-Image-Meta-Store": "swift"})
    assert r.status_code == 204, r.text
    assert demo_api.show(image["id"])["virtual_size"] == 64 * MiB
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204
    # A qcow2 naming a backing file is refused from a remote store as from a local one.
    import subprocess

    bad = tmp_path / "backed.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", str(qcow2_file), str(bad)],
                   check=True, capture_output=True)
    image = demo_api.create(name="q-backed", disk_format="qcow2")
    r = demo_api.upload(image["id"], bad.read_bytes(), **{"X-Image-Meta-Store": "swift"})
    assert r.status_code == 415 and "backing file" in r.text
    assert demo_api.show(image["id"])["status"] == "queued"
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


def test_partial_segments_swept(live: LiveCloud, small_segments: SwiftOptions) -> None:
    store = _store(live)

    async def abandoned() -> None:
        # A writer whose process died after one whole segment: neither committed nor aborted.
        writer = store.writer("abandoned")
        await writer.write([os.urandom(MiB)])
        await writer._close()

    live.call(abandoned())
    assert any(s["name"].startswith("abandoned.") for s in _segments(live))
    assert live.call(store.sweep_partials(3600)) == 0
    assert live.call(store.sweep_partials(-60)) >= 1
    assert not any(s["name"].startswith("abandoned.") for s in _segments(live))


@pytest.mark.parametrize("segmented", [False, True])
def test_failed_upload_leaves_nothing(live: LiveCloud, demo_api: Api, small_segments: SwiftOptions,
                                      segmented: bool) -> None:
    """Data shorter than announced is refused, and neither the object nor any segment of it stays behind."""
    data = os.urandom(2 * MiB + 7 if segmented else 300 * 1024)
    announced = len(data) + 1 if segmented else MiB  # known and small: one object; else segments
    before_objects, before_segments = _objects(live), {s["name"] for s in _segments(live)}
    image = demo_api.create(name="truncated")
    if not segmented:
        data = data[:announced - 10]
    r = demo_api.upload(image["id"], data, **{"X-Image-Meta-Store": "swift",
                                              "X-OpenStack-Image-Size": str(announced)})
    assert r.status_code == 400 and "truncated" in r.text
    assert demo_api.show(image["id"])["status"] == "queued"
    assert _objects(live) == before_objects
    assert {s["name"] for s in _segments(live)} == before_segments
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


@pytest.mark.parametrize("size", [0, 1000])
def test_unknown_size_upload(live: LiveCloud, demo_api: Api, admin_api: Api, size: int) -> None:
    """A chunked upload (no Content-Length) goes up as segments and a manifest, however short it is."""
    data = os.urandom(size)

    def body() -> Iterator[bytes]:
        yield data[:size // 2]
        yield data[size // 2:]

    image = demo_api.create(name="chunked")
    r = demo_api.upload(image["id"], body(), **{"X-Image-Meta-Store": "swift"})  # type: ignore[arg-type]
    assert r.status_code == 204, r.text
    shown = demo_api.show(image["id"])
    assert shown["size"] == size and shown["checksum"] == hashlib.md5(data).hexdigest()
    [key] = _keys(admin_api, image["id"])
    assert key in _objects(live)
    assert demo_api("GET", f"/v2/images/{image['id']}/file").content == data
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204
    assert key not in _objects(live) and not [s for s in _segments(live) if s["name"].startswith(f"{key}/")]
