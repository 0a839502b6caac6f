"""The image cache of an API node and Glance's cache API (2.14) over it: downloads from a remote store fill it
and are then served from disk, admins list, prefetch, drop and clear entries, members may not."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.image.conftest import Api
from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack.image.cache import ImageCache, Prefetcher


def _state(api: Api) -> dict[str, Any]:
    r = api("GET", "/v2/cache")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _entry(api: Api, image_id: str) -> dict[str, Any] | None:
    return next((e for e in _state(api)["cached_images"] if e["image_id"] == image_id), None)


def _in_swift(api: Api, data: bytes, **body: Any) -> dict[str, Any]:
    image = api.create(**body)
    r = api.upload(image["id"], data, **{"X-Image-Meta-Store": "swift"})
    assert r.status_code == 204, r.text
    return api.show(image["id"])


@pytest.mark.api
def test_download_fills_cache_then_served_from_it(live: LiveCloud, admin_api: Api, demo_api: Api) -> None:
    data = os.urandom(400 * 1024)
    image = _in_swift(demo_api, data, name="cached-one")
    assert _entry(admin_api, image["id"]) is None
    part = demo_api("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and _entry(admin_api, image["id"]) is None  # a range never fills it
    assert demo_api("GET", f"/v2/images/{image['id']}/file").content == data
    entry = _entry(admin_api, image["id"])
    assert entry is not None and entry["size"] == len(data) and entry["hits"] == 0
    # The object goes from the store behind the service's back: the cached copy still serves (with ranges).
    assert live.cloud.runtime is not None
    store = live.cloud.runtime.services["image"].stores["swift"]
    [key] = [loc["url"].rsplit("/", 1)[-1] for loc in admin_api.show(image["id"])["locations"]]
    live.call(store.delete(key))
    got = live.conn("demo").image.download_image(image["id"])
    assert got.content == data and hashlib.md5(got.content).hexdigest() == image["checksum"]
    ranged = demo_api("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    assert (_entry(admin_api, image["id"]) or {})["hits"] == 2
    # Deleting the image drops its cached copy.
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204
    assert _entry(admin_api, image["id"]) is None


@pytest.mark.api
def test_queue_prefetches_and_delete_drops(admin_api: Api) -> None:
    data = os.urandom(100 * 1024)
    image = _in_swift(admin_api, data, name="prefetched")
    assert admin_api("PUT", f"/v2/cache/{image['id']}").status_code == 202
    entry = wait_for(lambda: _entry(admin_api, image["id"]), 30, "the prefetch")
    assert entry["size"] == len(data) and image["id"] not in _state(admin_api)["queued_images"]
    assert admin_api("DELETE", f"/v2/cache/{image['id']}").status_code == 204
    assert _entry(admin_api, image["id"]) is None
    assert admin_api("DELETE", f"/v2/images/{image['id']}").status_code == 204
    # Deleted and no longer cached: unknown to the cache API.
    assert admin_api("DELETE", f"/v2/cache/{image['id']}").status_code == 404
    assert admin_api("PUT", f"/v2/cache/{image['id']}").status_code == 404


@pytest.mark.api
def test_clear_targets(admin_api: Api) -> None:
    image = _in_swift(admin_api, os.urandom(50 * 1024), name="to-clear")
    admin_api("GET", f"/v2/images/{image['id']}/file")
    assert _entry(admin_api, image["id"]) is not None
    assert admin_api("DELETE", "/v2/cache", headers={"x-image-cache-clear-target": "bogus"}).status_code == 400
    assert admin_api("DELETE", "/v2/cache", headers={"x-image-cache-clear-target": "queue"}).status_code == 204
    assert _entry(admin_api, image["id"]) is not None
    assert admin_api("DELETE", "/v2/cache", headers={"x-image-cache-clear-target": "cache"}).status_code == 204
    assert _entry(admin_api, image["id"]) is None
    admin_api("GET", f"/v2/images/{image['id']}/file")
    assert admin_api("DELETE", "/v2/cache").status_code == 204
    assert _state(admin_api) == {"cached_images": [], "queued_images": []}
    assert admin_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


@pytest.mark.api
def test_admin_only_and_active_only(demo_api: Api, admin_api: Api) -> None:
    image = demo_api.create(name="not-yet")
    assert demo_api("GET", "/v2/cache").status_code == 403
    assert demo_api("PUT", f"/v2/cache/{image['id']}").status_code == 403
    assert demo_api("DELETE", f"/v2/cache/{image['id']}").status_code == 403
    assert demo_api("DELETE", "/v2/cache").status_code == 403
    assert admin_api("PUT", f"/v2/cache/{image['id']}").status_code == 400  # queued, no data
    assert image["id"] not in _state(admin_api)["queued_images"]
    assert demo_api("DELETE", f"/v2/images/{image['id']}").status_code == 204


@pytest.mark.api
def test_no_cache_no_api(special: LiveCloud) -> None:
    """A node with ``image_cache_max_size = 0`` has no cache: no /v2/cache and no 2.14/2.16 in versions."""
    admin = Api(special, "admin")
    assert admin("GET", "/v2/cache").status_code == 404
    ids = [v["id"] for v in requests.get(special.url("image") + "/versions", timeout=10).json()["versions"]]
    assert ids[0] == "v2.17" and "v2.15" in ids and "v2.14" not in ids and "v2.16" not in ids


@pytest.mark.unit
def test_lru_pruning(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "cache", max_size=250)

    async def put(image_id: str, data: bytes) -> bool:
        async def source() -> Any:
            yield data

        return await cache.fill(image_id, len(data), hashlib.md5(data).hexdigest(), source())

    blobs = {name: os.urandom(100) for name in ("a", "b", "c")}
    assert asyncio.run(put("a", blobs["a"])) and asyncio.run(put("b", blobs["b"]))
    assert cache.lookup("a", hashlib.md5(blobs["a"]).hexdigest()) is not None  # "a" is now the most recent
    assert asyncio.run(put("c", blobs["c"]))
    assert sorted(e.image_id for e in cache.cached()) == ["a", "c"] and not (tmp_path / "cache" / "b").exists()
    # A copy that does not match the image's checksum is never installed.
    async def wrong() -> bool:
        async def source() -> Any:
            yield b"x" * 10

        return await cache.fill("d", 10, "0" * 32, source())

    assert not asyncio.run(wrong()) and "d" not in {e.image_id for e in cache.cached()}
    assert cache.lookup("a", "0" * 32) is None
    assert not list((tmp_path / "cache" / "incomplete").iterdir())


@pytest.mark.unit
def test_tidy_drops_copies_of_images_gone(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "cache", max_size=10_000)

    async def run() -> int:
        for image_id in ("kept", "gone"):
            async def source(data: bytes = image_id.encode()) -> Any:
                yield data

            assert await cache.fill(image_id, len(image_id), hashlib.md5(image_id.encode()).hexdigest(), source())
        prefetcher = Prefetcher(cache, lambda _id: None, lambda: {"kept"})
        return await prefetcher.tidy()

    assert asyncio.run(run()) == 1
    assert [e.image_id for e in cache.cached()] == ["kept"] and not (tmp_path / "cache" / "gone").exists()
