"""The filesystem driver against the store contract in drivers/base.py."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tinystack.image.drivers.base import ObjectNotFound, StoreDriver
from tinystack.image.drivers.filesystem import FilesystemStore


async def _read(store: StoreDriver, location: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([c async for c in store.read(location, offset, length)])


def test_write_commit_read_delete(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FilesystemStore("file", tmp_path / "file")
        writer = store.writer("img")
        await writer.write([b"hello ", b"world"])
        assert await store.locations() == []  # nothing visible before commit
        location = await writer.commit()
        await writer.abort()  # a no-op after commit
        assert await store.locations() == [location]
        assert await _read(store, location) == b"hello world"
        assert await _read(store, location, 6, 3) == b"wor"
        assert await store.size(location) == 11
        assert store.local_path(location) == tmp_path / "file" / location
        await store.delete(location)
        await store.delete(location)  # deleting what is gone succeeds
        with pytest.raises(ObjectNotFound):
            await store.size(location)
        with pytest.raises(ObjectNotFound):
            await _read(store, location)

    asyncio.run(scenario())


def test_abort_removes_partial_data(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FilesystemStore("file", tmp_path)
        writer = store.writer("img")
        await writer.write([os.urandom(1000)])
        assert len(list((tmp_path / ".partial").iterdir())) == 1
        await writer.abort()
        await writer.abort()
        assert list((tmp_path / ".partial").iterdir()) == []
        assert await store.locations() == []

    asyncio.run(scenario())


def test_two_writers_for_one_image_do_not_collide(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FilesystemStore("file", tmp_path)
        a, b = store.writer("img"), store.writer("img")
        await a.write([b"a"])
        await b.write([b"b"])
        la, lb = await a.commit(), await b.commit()
        assert la != lb and await _read(store, la) == b"a" and await _read(store, lb) == b"b"

    asyncio.run(scenario())


def test_sweep_partials_and_locations_are_contained(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FilesystemStore("file", tmp_path)
        writer = store.writer("img")
        await writer.write([b"x"])
        assert await store.sweep_partials(older_than=3600) == 0
        old = time.time() - 7200
        for p in (tmp_path / ".partial").iterdir():
            os.utime(p, (old, old))
        assert await store.sweep_partials(older_than=3600) == 1
        for bad in ("../etc/passwd", ".partial", ""):
            with pytest.raises(ObjectNotFound):
                store.local_path(bad)
        capacity = store.capacity()
        assert capacity.total and capacity.free is not None
        assert store.describe()["data_dir"] == str(tmp_path)

    asyncio.run(scenario())
