"""The image service without HTTP: failure paths of transfers and the sweeper that undoes abandoned ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.waiting import until
from tinystack import config
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.image import transfer
from tinystack.image.models import Image
from tinystack.image.service import MIGRATIONS, ImageService

OWNER = RequestContext(user_id="u1", project_id="p1", roles=("member", "reader"))
OTHER = RequestContext(user_id="u2", project_id="p2", roles=("member", "reader"))


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
    cfg.values["image"] = {"upload_stale_after": "30"}
    db = Database(cfg.database_url)
    db.migrate("image", MIGRATIONS)
    yield ImageService(cfg, db, PolicyEngine())
    db.dispose()


async def source(data: bytes, fail: bool = False, hook: object = None) -> AsyncIterator[bytes]:
    half = len(data) // 2
    yield data[:half]
    if callable(hook):
        hook()
    if fail:
        raise transfer.SourceError("client went away")
    yield data[half:]


def objects(svc: ImageService) -> list[str]:
    return asyncio.run(svc.stores["file"].locations())


def test_upload_then_download(svc: ImageService) -> None:
    image = svc.create(OWNER, {"name": "a", "disk_format": "raw", "container_format": "bare"})
    asyncio.run(svc.data.upload(OWNER, image.id, source(b"0123456789")))
    got = svc.get(OWNER, image.id)
    assert (got.status, got.size, got.virtual_size) == ("active", 10, 10)
    handle = svc.data.download(OWNER, image.id)
    assert handle is not None and handle.path is not None and handle.path.read_bytes() == b"0123456789"


def test_interrupted_source_leaves_image_queued_and_no_data(svc: ImageService) -> None:
    image = svc.create(OWNER, {"name": "a", "disk_format": "raw", "container_format": "bare"})
    with pytest.raises(errors.BadRequest):
        asyncio.run(svc.data.upload(OWNER, image.id, source(b"x" * 1000, fail=True)))
    assert svc.get(OWNER, image.id).status == "queued"
    assert objects(svc) == [] and list((svc.stores["file"].directory / ".partial").iterdir()) == []  # type: ignore[attr-defined]


def test_delete_during_upload_is_410_and_cleans_up(svc: ImageService) -> None:
    image = svc.create(OWNER, {"name": "a", "disk_format": "raw", "container_format": "bare"})

    def delete() -> None:
        with svc.session() as s:
            s.delete(s.get(Image, image.id))

    with pytest.raises(errors.Gone):
        asyncio.run(svc.data.upload(OWNER, image.id, source(b"x" * 1000, hook=delete)))
    assert objects(svc) == []


def test_concurrent_upload_is_409(svc: ImageService) -> None:
    image = svc.create(OWNER, {"name": "a", "disk_format": "raw", "container_format": "bare"})

    async def scenario() -> None:
        gate = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            yield b"a"
            await gate.wait()
            yield b"b"

        first = asyncio.create_task(svc.data.upload(OWNER, image.id, slow()))
        await until(lambda: svc.get(OWNER, image.id).status == "saving", 5, "the first upload to begin")
        with pytest.raises(errors.Conflict):
            await svc.data.upload(OWNER, image.id, source(b"zz"))
        gate.set()
        await first

    asyncio.run(scenario())
    assert svc.get(OWNER, image.id).size == 2


def test_other_project_cannot_upload(svc: ImageService) -> None:
    image = svc.create(OWNER, {"name": "a", "disk_format": "raw", "container_format": "bare",
                               "visibility": "community"})
    with pytest.raises(errors.Forbidden):
        asyncio.run(svc.data.upload(OTHER, image.id, source(b"x")))
    private = svc.create(OWNER, {"name": "b", "visibility": "private"})
    with pytest.raises(errors.NotFound):
        asyncio.run(svc.data.upload(OTHER, private.id, source(b"x")))


def test_sweeper_resets_abandoned_transfers_and_removes_orphans(svc: ImageService) -> None:
    saving = svc.create(OWNER, {"name": "s", "disk_format": "raw", "container_format": "bare"})
    importing = svc.create(OWNER, {"name": "i", "disk_format": "raw", "container_format": "bare"})
    asyncio.run(svc.data.stage(OWNER, importing.id, source(b"staged")))
    with svc.session() as s:
        s.get(Image, saving.id).status = "saving"  # type: ignore[union-attr]
        s.get(Image, saving.id).transfer_heartbeat = time.time() - 3600  # type: ignore[union-attr]
        s.get(Image, importing.id).status = "importing"  # type: ignore[union-attr]
        s.get(Image, importing.id).transfer_heartbeat = time.time() - 3600  # type: ignore[union-attr]

    async def orphan() -> str:
        writer = svc.stores["file"].writer("nobody")
        await writer.write([b"lost"])
        return await writer.commit()

    lost = asyncio.run(orphan())
    asyncio.run(svc.sweeper.sweep())
    assert svc.get(OWNER, saving.id).status == "queued"
    assert svc.get(OWNER, importing.id).status == "uploading"
    assert lost in objects(svc)  # an unowned object survives one sweep: it may be an upload being finalized
    asyncio.run(svc.sweeper.sweep())
    assert lost not in objects(svc)


def test_import_of_unsafe_data_drops_staging(svc: ImageService, tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    disk = tmp_path / "b.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", "-u", str(disk), "1G"],
                   check=True, capture_output=True)
    image = svc.create(OWNER, {"name": "i", "disk_format": "qcow2", "container_format": "bare"})

    async def scenario() -> None:
        await svc.data.stage(OWNER, image.id, source(disk.read_bytes()))
        await svc.imports.import_image(OWNER, image.id, {"method": {"name": "glance-direct"}}, "req-x")
        for _ in range(100):
            if svc.get(OWNER, image.id).status != "importing":
                break
            await asyncio.sleep(0.02)

    asyncio.run(scenario())
    assert svc.get(OWNER, image.id).status == "queued"
    [task] = svc.tasks(OWNER, image.id)
    assert task.status == "failure" and "backing file" in task.message
    assert asyncio.run(svc.staging.locations()) == [] and objects(svc) == []
