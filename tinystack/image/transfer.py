"""Streaming image data into a store while hashing it (MD5 and SHA-512), never holding more than a few
blocks in memory. Hashing and writing run in threads, overlapped with reading the next block."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from tinystack.image.drivers.base import StoreWriter

BLOCK = 4 * 1024 * 1024


class SourceError(Exception):
    """The data source failed: the client went away or sent less than it announced."""


class TooLarge(Exception):
    """The data exceeds the byte budget the caller allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Digest:
    size: int
    md5: str
    sha512: str


def _update(hasher: Any, batch: list[bytes]) -> None:
    for chunk in batch:
        hasher.update(chunk)


async def batches(source: AsyncIterator[bytes], size: int = BLOCK) -> AsyncIterator[list[bytes]]:
    """Regroup ``source`` into lists of chunks of about ``size`` bytes, without copying."""
    batch: list[bytes] = []
    count = 0
    async for chunk in source:
        if not chunk:
            continue
        batch.append(chunk)
        count += len(chunk)
        if count >= size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


async def receive(source: AsyncIterator[bytes], writer: StoreWriter, limit: int | None = None,
                  progress: Callable[[int], None] | None = None) -> Digest:
    """Write everything ``source`` yields through ``writer`` (uncommitted) and return its digest.

    Raises TooLarge past ``limit`` bytes, and whatever the source or writer raise; the caller then aborts
    the writer. No thread is still touching the writer when this returns or raises."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha512 = hashlib.sha512()
    total = 0
    pending: list[asyncio.Future[Any]] = []
    try:
        async for batch in batches(source):
            total += sum(len(c) for c in batch)
            if limit is not None and total > limit:
                raise TooLarge(limit)
            if pending:
                # Shielded: a cancelled request must not leave a thread writing after the writer is aborted.
                await asyncio.shield(asyncio.gather(*pending))
            pending = [asyncio.ensure_future(asyncio.to_thread(_update, md5, batch)),
                       asyncio.ensure_future(asyncio.to_thread(_update, sha512, batch)),
                       asyncio.ensure_future(writer.write(batch))]
            if progress is not None:
                progress(total)
        if pending:
            await asyncio.shield(asyncio.gather(*pending))
    finally:
        if any(not f.done() for f in pending):
            with contextlib.suppress(BaseException):
                await asyncio.wait(pending)
        for f in pending:
            if f.done() and not f.cancelled():
                f.exception()  # retrieved, so an error already raised is not reported again as unhandled
    return Digest(total, md5.hexdigest(), sha512.hexdigest())


async def copy(source: AsyncIterator[bytes], writer: StoreWriter,
               progress: Callable[[int], None] | None = None) -> int:
    """Copy without hashing (the digest is already known); returns the byte count."""
    total = 0
    async for batch in batches(source):
        total += sum(len(c) for c in batch)
        await writer.write(batch)
        if progress is not None:
            progress(total)
    return total
