"""The filesystem driver against the store contract in drivers/base.py."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from pathlib import Path

import pytest

from tinystack.image.drivers import filesystem
from tinystack.image.drivers.base import ObjectNotFound, StoreDriver
from tinystack.image.drivers.filesystem import DIRECT_BUFFER, FilesystemStore


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


def _odd_chunks(data: bytes) -> list[list[bytes]]:
    """Batches of uneven chunks, so the aligned buffer fills and wraps mid-chunk."""
    sizes, out, pos = [1, 4095, 65537, 3 * 1024 * 1024 + 5, 2 * 1024 * 1024 - 1], [], 0
    while pos < len(data):
        batch = []
        for size in sizes:
            batch.append(data[pos:pos + size])
            pos += size
        out.append([c for c in batch if c])
    return out


@pytest.mark.parametrize("direct_io", [True, False])
def test_direct_and_buffered_writes_keep_every_byte(tmp_path: Path, direct_io: bool) -> None:
    data = os.urandom(3 * DIRECT_BUFFER + 12345)

    async def scenario() -> None:
        store = FilesystemStore("file", tmp_path, direct_io=direct_io)
        writer = store.writer("img")
        for batch in _odd_chunks(data):
            await writer.write(batch)
        partial = next((tmp_path / ".partial").iterdir())
        # Whole aligned blocks reach the file before commit; the tail waits in the buffer when direct.
        assert partial.stat().st_size == (3 * DIRECT_BUFFER if direct_io else len(data))
        location = await writer.commit()
        assert (tmp_path / location).read_bytes() == data
        assert list((tmp_path / ".partial").iterdir()) == []

    asyncio.run(scenario())


def test_no_direct_io_falls_back_to_buffered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem that refuses O_DIRECT (fcntl says EINVAL) gets ordinary writes."""
    real_fcntl = filesystem.fcntl.fcntl

    def no_direct(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == filesystem.fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(filesystem.fcntl, "fcntl", no_direct)
    data = os.urandom(DIRECT_BUFFER + 7)

    async def scenario() -> None:
        store = FilesystemStore("file", tmp_path)
        writer = store.writer("img")
        await writer.write([data])
        assert next((tmp_path / ".partial").iterdir()).stat().st_size == len(data)
        location = await writer.commit()
        assert (tmp_path / location).read_bytes() == data

    asyncio.run(scenario())


def test_abort_after_direct_writes_leaves_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FilesystemStore("file", tmp_path)
        writer = store.writer("img")
        await writer.write([os.urandom(DIRECT_BUFFER + 1)])
        await writer.abort()
        assert list((tmp_path / ".partial").iterdir()) == [] and await store.locations() == []

    asyncio.run(scenario())


def test_direct_write_refused_midway_goes_on_buffered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some filesystems accept O_DIRECT at fcntl time and refuse the write itself (EINVAL)."""
    real_write = filesystem._write_some
    calls = []

    def picky(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        if len(calls) == 1:  # the first direct write goes through in part, then direct I/O is refused
            return real_write(fd, data[:4096])
        if filesystem.fcntl.fcntl(fd, filesystem.fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(filesystem, "_write_some", picky)
    data = os.urandom(2 * DIRECT_BUFFER + 3)

    async def scenario() -> None:
        store = FilesystemStore("file", tmp_path)
        writer = store.writer("img")
        await writer.write([data])
        location = await writer.commit()
        assert (tmp_path / location).read_bytes() == data

    asyncio.run(scenario())
