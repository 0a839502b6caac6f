"""Import rules without HTTP: which URLs web-download may fetch, what the sweeper does with an abandoned
web-download, and that a copy whose process died does not block the next one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.test_service import OWNER, source
from tinystack import config
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.image import imports, webdownload
from tinystack.image.models import Image, ImageTask, utcnow
from tinystack.image.service import MIGRATIONS, ImageService

ADMIN = RequestContext(user_id="a", project_id="p1", roles=("admin", "member", "reader"))


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
    cfg.values["image"] = {"upload_stale_after": "30", "stores": "file,fast",
                           "web_download_allowed_hosts": "mirror.internal"}
    db = Database(cfg.database_url)
    db.migrate("image", MIGRATIONS)
    yield ImageService(cfg, db, PolicyEngine())
    db.dispose()


@pytest.mark.parametrize("uri", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "http://",
                                 "http://10.1.2.3/x", "http://127.0.0.1/x", "http://[::1]/x", "http://169.254.169.254/",
                                 "http://192.168.0.1/x", "http://100.64.0.1/x", "http://[fe80::1]/x",
                                 "http://example.com:8080/x", "http://u:p@example.com/x", "http://example.com:99999/"])
def test_refused_urls(svc: ImageService, uri: str) -> None:
    with pytest.raises(webdownload.Refused, match="does not pass filtering"):
        webdownload.check_url(uri, svc.settings)


def test_allowed_urls(svc: ImageService) -> None:
    assert webdownload.check_url("https://example.com/a.img", svc.settings) == ("example.com", 443, False)
    assert webdownload.check_url("http://8.8.8.8/a", svc.settings) == ("8.8.8.8", 80, False)
    # A listed host may use any port, and its addresses are not checked.
    assert webdownload.check_url("http://MIRROR.internal:8000/a", svc.settings) == ("mirror.internal", 8000, True)


def test_a_name_resolving_to_a_private_address_is_refused(svc: ImageService) -> None:
    with pytest.raises(webdownload.Refused, match="non-public"):
        asyncio.run(webdownload.check_resolves("http://localhost/x", svc.settings))


def test_sweeper_restarts_an_abandoned_web_download(svc: ImageService) -> None:
    image = svc.create(OWNER, {"name": "w", "disk_format": "raw", "container_format": "bare"})
    asyncio.run(svc.data.stage(OWNER, image.id, source(b"half")))
    with svc.session() as s:
        row = s.get(Image, image.id)
        assert row is not None
        row.status, row.transfer_heartbeat = "importing", time.time() - 3600
        s.add(ImageTask(id="t1", image_id=image.id, type="api_image_import", status="processing", owner="p1",
                        input={"import_req": {"method": {"name": "web-download", "uri": "http://x/"}}},
                        message="", created_at=utcnow(), updated_at=utcnow()))
    asyncio.run(svc.sweeper.sweep())
    got = svc.get(OWNER, image.id)
    assert got.status == "queued" and not got.locations
    assert svc.tasks(OWNER, image.id)[0].status == "failure"


def test_a_dead_copy_does_not_block_the_next(svc: ImageService) -> None:
    image = svc.create(ADMIN, {"name": "c", "disk_format": "raw", "container_format": "bare"})
    asyncio.run(svc.data.upload(ADMIN, image.id, source(b"0123456789")))
    copy = {"method": {"name": "copy-image"}, "stores": ["fast"]}

    def mark(beat: float) -> None:
        with svc.session() as s:
            row = s.get(Image, image.id)
            assert row is not None
            imports.note_progress(row, importing=["fast"], failed=[])
            row.transfer_heartbeat = beat

    async def scenario() -> None:
        mark(time.time())
        with pytest.raises(errors.Conflict, match="in progress"):
            await svc.imports.import_image(ADMIN, image.id, copy, "req-1")
        mark(time.time() - 3600)
        await svc.imports.import_image(ADMIN, image.id, copy, "req-2")
        for _ in range(200):
            if len(svc.get(ADMIN, image.id).locations) == 2:
                break
            await asyncio.sleep(0.02)

    asyncio.run(scenario())
    got = svc.get(ADMIN, image.id)
    assert sorted(loc.store for loc in got.locations) == ["fast", "file"] and got.transfer_heartbeat is None
    with pytest.raises(errors.Forbidden):  # copy-image is an admin's
        asyncio.run(svc.imports.import_image(OWNER, image.id, copy, "req-3"))
