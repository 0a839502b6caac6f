"""The filesystem store: one file per image under a directory, written via a temp file, fsync and rename."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from tinystack.image.drivers.base import Capacity, ObjectNotFound, StoreError, StoreFull

READ_CHUNK = 1024 * 1024
_PARTIAL_DIR = ".partial"


def _store_error(exc: OSError) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"image store is full: {exc.strerror}")
    return StoreError(f"image store I/O error: {exc}")


class FileWriter:
    def __init__(self, directory: Path, image_id: str) -> None:
        self._dir = directory
        self._name = f"{image_id}.{uuid.uuid4().hex[:12]}"
        self._partial = directory / _PARTIAL_DIR / self._name
        self._fd: int | None = None
        self._committed = False

    def _open(self) -> int:
        if self._fd is None:
            self._partial.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return self._fd

    def _write(self, chunks: Sequence[bytes]) -> None:
        fd = self._open()
        pending = [memoryview(c) for c in chunks if c]
        while pending:
            done = os.writev(fd, pending[:1024])
            while done and pending:
                if done >= len(pending[0]):
                    done -= len(pending.pop(0))
                else:
                    pending[0] = pending[0][done:]
                    done = 0

    async def write(self, chunks: Sequence[bytes]) -> None:
        try:
            await asyncio.to_thread(self._write, chunks)
        except OSError as exc:
            raise _store_error(exc) from exc

    def _commit(self) -> str:
        fd = self._open()
        os.fsync(fd)
        os.close(fd)
        self._fd = None
        os.rename(self._partial, self._dir / self._name)
        dir_fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._committed = True
        return self._name

    async def commit(self) -> str:
        try:
            return await asyncio.to_thread(self._commit)
        except OSError as exc:
            raise _store_error(exc) from exc

    def _abort(self) -> None:
        if self._committed:
            return
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self._partial.unlink()

    async def abort(self) -> None:
        await asyncio.to_thread(self._abort)


class FilesystemStore:
    """Objects are files named ``<image_id>.<nonce>`` in ``directory``; partial writes live in ``.partial/``."""

    kind = "file"

    def __init__(self, store_id: str, directory: Path) -> None:
        self.store_id = store_id
        self.directory = directory
        (directory / _PARTIAL_DIR).mkdir(parents=True, exist_ok=True)

    def _path(self, location: str) -> Path:
        # Locations are names this driver made; refuse anything that could leave the directory.
        if not location or "/" in location or location.startswith("."):
            raise ObjectNotFound(f"invalid location {location!r}")
        return self.directory / location

    def writer(self, image_id: str) -> FileWriter:
        return FileWriter(self.directory, image_id)

    async def read(self, location: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(location)
        try:
            f = await asyncio.to_thread(open, path, "rb", buffering=0)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {location} in store {self.store_id}") from None
        try:
            if offset:
                f.seek(offset)
            remaining = length
            while remaining is None or remaining > 0:
                want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await asyncio.to_thread(f.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def size(self, location: str) -> int:
        try:
            return (await asyncio.to_thread(os.stat, self._path(location))).st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {location} in store {self.store_id}") from None

    def local_path(self, location: str) -> Path:
        return self._path(location)

    async def delete(self, location: str) -> None:
        try:
            await asyncio.to_thread(self._path(location).unlink, missing_ok=True)
        except OSError as exc:
            raise _store_error(exc) from exc

    async def locations(self) -> list[str]:
        def scan() -> list[str]:
            return [e.name for e in os.scandir(self.directory) if e.is_file() and not e.name.startswith(".")]

        return await asyncio.to_thread(scan)

    async def sweep_partials(self, older_than: float) -> int:
        def sweep() -> int:
            cutoff, removed = time.time() - older_than, 0
            for entry in os.scandir(self.directory / _PARTIAL_DIR):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
            return removed

        return await asyncio.to_thread(sweep)

    def capacity(self) -> Capacity:
        st = os.statvfs(self.directory)
        return Capacity(total=st.f_blocks * st.f_frsize, free=st.f_bavail * st.f_frsize)

    def describe(self) -> dict[str, Any]:
        return {"data_dir": str(self.directory), "chunk_size": READ_CHUNK, "thin_provisioning": False}
