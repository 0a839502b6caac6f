"""The streaming pipeline: digests, byte budgets, and no writes after a failure."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Sequence

import pytest

from tests.waiting import until
from tinystack.image import transfer


class MemoryWriter:
    def __init__(self, fail_after: int | None = None) -> None:
        self.data = bytearray()
        self.fail_after = fail_after
        self.writes_after_abort = 0
        self.aborted = False
        self.in_flight = 0  # writes begun and not yet returned
        self.in_flight_at_abort: int | None = None

    async def write(self, chunks: Sequence[bytes]) -> None:
        self.in_flight += 1
        try:
            await asyncio.sleep(0.001)  # the store's I/O
            if self.aborted:
                self.writes_after_abort += 1
            for c in chunks:
                self.data += c
            if self.fail_after is not None and len(self.data) > self.fail_after:
                raise OSError("disk on fire")
        finally:
            self.in_flight -= 1

    async def commit(self) -> str:
        return "loc"

    async def abort(self) -> None:
        self.aborted = True
        self.in_flight_at_abort = self.in_flight


async def chunks(data: bytes, size: int = 65536, fail_at: int | None = None) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        if fail_at is not None and i >= fail_at:
            raise transfer.SourceError("client went away")
        yield data[i : i + size]


def test_digest_matches_hashlib() -> None:
    data = os.urandom(9 * 1024 * 1024 + 17)
    writer = MemoryWriter()
    digest = asyncio.run(transfer.receive(chunks(data), writer))
    assert digest == transfer.Digest(len(data), hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest())
    assert bytes(writer.data) == data


def test_empty_source() -> None:
    digest = asyncio.run(transfer.receive(chunks(b""), MemoryWriter()))
    assert digest.size == 0 and digest.md5 == hashlib.md5(b"").hexdigest()


def test_budget() -> None:
    with pytest.raises(transfer.TooLarge):
        asyncio.run(transfer.receive(chunks(b"x" * 100), MemoryWriter(), limit=99))
    assert asyncio.run(transfer.receive(chunks(b"x" * 100), MemoryWriter(), limit=100)).size == 100


def test_source_and_writer_failures_propagate() -> None:
    data = os.urandom(20 * 1024 * 1024)
    with pytest.raises(transfer.SourceError):
        asyncio.run(transfer.receive(chunks(data, fail_at=10 * 1024 * 1024), MemoryWriter()))
    with pytest.raises(OSError, match="fire"):
        asyncio.run(transfer.receive(chunks(data), MemoryWriter(fail_after=5 * 1024 * 1024)))


def test_cancel_waits_for_writes_in_flight() -> None:
    async def scenario() -> MemoryWriter:
        writer = MemoryWriter()

        async def endless() -> AsyncIterator[bytes]:
            while True:
                yield b"x" * 65536

        task = asyncio.create_task(transfer.receive(endless(), writer))
        await until(lambda: writer.in_flight and writer.data, 5, "a write in flight after the first")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await writer.abort()
        return writer

    # No write was still running when the caller aborted (rather than waiting a while to see whether one
    # lands after the abort): so none can land after it.
    writer = asyncio.run(scenario())
    assert writer.in_flight_at_abort == 0 and writer.writes_after_abort == 0


def test_batches_regroup_without_losing_bytes() -> None:
    async def collect() -> list[list[bytes]]:
        return [b async for b in transfer.batches(chunks(b"abcdefghij", size=3), size=4)]

    groups = asyncio.run(collect())
    assert [b"".join(g) for g in groups] == [b"abcdef", b"ghij"]
