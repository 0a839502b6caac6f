"""The chunked backup driver (Cinder's chunked driver shape): a volume file is cut into ``chunk_size`` pieces
(52428800 bytes by default), each compressed with zlib (unless its first MiB does not compress) into one object
``<prefix>-NNNNN``, and a metadata object ``<prefix>_metadata`` lists every chunk with its offset, length and
sha256. The metadata object is written last and removed first, so a backup is complete exactly when it exists.

Data is streamed (1 MiB pieces through the compressor and over chunked HTTP), never buffered whole. Ranges the
file holds no data for (holes of a sparse volume) are recorded as zero chunks without an object. An incremental
backup compares each chunk's sha256 with its parent's and stores only the chunks that changed; the others point
at the parent's (or an older ancestor's) objects, which the API keeps while a dependent backup exists.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tinystack.volume.drivers.base import DriverError
from tinystack.volume.drivers.swift import SwiftClient

CHUNK_SIZE = 52428800
PIECE = 1 << 20
FORMAT_VERSION = 1
_ZEROS = bytes(PIECE)
_zero_sha: dict[int, str] = {}


def metadata_name(prefix: str) -> str:
    return f"{prefix}_metadata"


def zero_sha(length: int) -> str:
    """sha256 of ``length`` zero bytes (cached: every hole of one length has the same)."""
    if length not in _zero_sha:
        h = hashlib.sha256()
        for _ in range(length // PIECE):
            h.update(_ZEROS)
        h.update(bytes(length % PIECE))
        _zero_sha[length] = h.hexdigest()
    return _zero_sha[length]


def _no_data(fd: int, offset: int, length: int) -> bool:
    """Whether the file holds no data in [offset, offset + length): a hole reads as zeros."""
    try:
        found = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no data after offset at all
            return True
        raise
    return found >= offset + length


def _read(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    return data + bytes(length - len(data))  # a file shorter than its stated size reads as zeros


def _hash_range(fd: int, offset: int, length: int) -> str:
    h = hashlib.sha256()
    for pos in range(offset, offset + length, PIECE):
        h.update(_read(fd, pos, min(PIECE, offset + length - pos)))
    return h.hexdigest()


def _zero_range(fd: int, offset: int, length: int) -> None:
    """Make [offset, offset + length) read as zeros, writing only where the file holds data."""
    pos, end = offset, offset + length
    while pos < end:
        try:
            found = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return
            raise
        if found >= end:
            return
        n = min(PIECE, end - found)
        os.pwrite(fd, _ZEROS[:n], found)
        pos = found + n


def _worth_compressing(sample: bytes, level: int) -> bool:
    """Whether zlib saves at least a tenth on the chunk's first piece: random or already compressed data is
    stored as it is, since compressing it costs more CPU than the bytes it would save (about 25 MiB/s here)."""
    return len(zlib.compress(sample, level)) < 0.9 * len(sample)


def _fsync(fd: int) -> None:
    os.fsync(fd)


class ChunkedBackupDriver:
    def __init__(self, swift: SwiftClient, chunk_size: int = CHUNK_SIZE, level: int = 1) -> None:
        if chunk_size < PIECE or chunk_size % PIECE:
            raise ValueError(f"backup chunk size must be a multiple of {PIECE} bytes, not {chunk_size}")
        self.swift = swift
        self.chunk_size = chunk_size
        self.level = level

    async def find(self, container: str, prefix: str) -> dict[str, Any] | None:
        """The backup's metadata when the backup is complete in object storage, else None."""
        return await self.swift.get_json(container, metadata_name(prefix))

    async def backup(self, source: Path, container: str, prefix: str, info: dict[str, Any],
                     parent: dict[str, Any] | None = None) -> dict[str, Any]:
        """Copy ``source`` into ``container`` under ``prefix``; ``parent``: the metadata of the backup this one is
        incremental to. Returns the metadata written (``info`` is kept in it: ids, for import checks)."""
        await self.swift.ensure_container(container)
        previous = {int(e["offset"]): e for e in (parent or {}).get("objects", [])}
        fd = os.open(source, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            entries: list[dict[str, Any]] = []
            for index, offset in enumerate(range(0, size, self.chunk_size), start=1):
                length = min(self.chunk_size, size - offset)
                entries.append(await self._chunk(fd, container, f"{prefix}-{index:05d}", offset, length,
                                                 previous.get(offset)))
        finally:
            os.close(fd)
        meta = {"version": FORMAT_VERSION, **info, "size_bytes": size, "chunk_size": self.chunk_size,
                "created_at": time.time(), "objects": entries}
        body = json.dumps(meta, sort_keys=True).encode()
        await self.swift.put(container, metadata_name(prefix), body, {"Content-Type": "application/json"})
        return meta

    async def _chunk(self, fd: int, container: str, name: str, offset: int, length: int,
                     before: dict[str, Any] | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"offset": offset, "length": length}
        if await asyncio.to_thread(_no_data, fd, offset, length):
            return {**entry, "sha256": zero_sha(length), "zero": True}
        if before is not None and int(before.get("length") or 0) == length:
            sha = await asyncio.to_thread(_hash_range, fd, offset, length)
            if sha == before.get("sha256"):
                return dict(before)  # unchanged since the parent: its object (or its zero mark) serves
        h = hashlib.sha256()
        compress = await asyncio.to_thread(_worth_compressing, _read(fd, offset, min(PIECE, length)), self.level)
        await self.swift.put(container, name, self._body(fd, offset, length, h, compress),
                             {"Content-Type": "application/octet-stream"})
        return {**entry, "sha256": h.hexdigest(), "name": name, "compression": "zlib" if compress else None}

    async def _body(self, fd: int, offset: int, length: int, h: Any, compress: bool) -> AsyncIterator[bytes]:
        z = zlib.compressobj(self.level) if compress else None

        def piece(pos: int, n: int) -> bytes:
            data = _read(fd, pos, n)
            h.update(data)
            return z.compress(data) if z is not None else data

        for pos in range(offset, offset + length, PIECE):
            out = await asyncio.to_thread(piece, pos, min(PIECE, offset + length - pos))
            if out:
                yield out
        if z is not None:
            yield z.flush()

    async def restore(self, container: str, prefix: str, target: Path) -> None:
        """Write the backup into ``target`` (at least as large); ranges past the backup's size are left as they are."""
        meta = await self.find(container, prefix)
        if meta is None:
            raise DriverError(f"backup {container}/{prefix} is not in object storage", permanent=True)
        fd = os.open(target, os.O_WRONLY)
        try:
            have = os.fstat(fd).st_size
            if have < int(meta["size_bytes"]):
                raise DriverError(f"volume of {have} bytes is too small for a backup of {meta['size_bytes']}",
                                  permanent=True)
            for e in meta["objects"]:
                offset, length = int(e["offset"]), int(e["length"])
                if e.get("zero"):
                    await asyncio.to_thread(_zero_range, fd, offset, length)
                else:
                    await self._restore_chunk(fd, container, e, offset, length)
            await asyncio.to_thread(_fsync, fd)
        finally:
            os.close(fd)

    async def _restore_chunk(self, fd: int, container: str, e: dict[str, Any], offset: int, length: int) -> None:
        z, h, pos = zlib.decompressobj() if e.get("compression") == "zlib" else None, hashlib.sha256(), offset

        def write(data: bytes, at: int) -> None:
            h.update(data)
            os.pwrite(fd, data, at)

        async for piece in self.swift.get(container, str(e["name"])):
            if z is None:
                await asyncio.to_thread(write, piece, pos)
                pos += len(piece)
                continue
            buf = piece
            while buf:
                # Bounded output: a megabyte of compressed zeros would otherwise inflate to a gigabyte at once.
                try:
                    data = z.decompress(buf, PIECE)
                except zlib.error as exc:
                    raise DriverError(f"backup object {e['name']} is corrupt: {exc}") from exc
                buf = z.unconsumed_tail
                if data:
                    await asyncio.to_thread(write, data, pos)
                    pos += len(data)
        tail = z.flush() if z is not None else b""
        if tail:
            await asyncio.to_thread(write, tail, pos)
            pos += len(tail)
        if pos - offset != length or h.hexdigest() != e.get("sha256"):
            raise DriverError(f"backup object {e['name']}: {pos - offset} bytes with sha256 {h.hexdigest()}, "
                              f"expected {length} with {e.get('sha256')}")

    async def delete(self, container: str, prefix: str) -> int:
        """Remove every object of the backup, the metadata first (a half-deleted backup never looks complete);
        returns how many objects were listed."""
        names = await self.swift.names(container, prefix)
        await self.swift.delete(container, metadata_name(prefix))
        for name in names:
            if name != metadata_name(prefix):
                await self.swift.delete(container, name)
        return len(names)
