"""The small writes of one object (a 4 KiB PUT's replicas, a DELETE's tombstones) that this node's servers are
asked for in one turn of the event loop, done together in one trip to an I/O thread instead of one trip each.

A PUT fanned out by a proxy of this process reaches each of its local devices in the same loop turn. Written one
per thread, every replica's system calls let go of the GIL and wait to take it back from the loop and the other
threads, and each file's fsync commits an ext4 journal transaction of its own. Written together, the files are
all made first, their write-back started (``Writer.start_sync``), then fsynced one after the other: the first
fsync commits the transaction that holds the others' blocks too, so theirs find little left to do; then all are
renamed into their hash dirs, and the dirs fsynced the same way. Every fsync a write had stays: an answer still
means on the disk. A write that fails (a device gone: 507, a 409, a bad ETag) fails alone, at whichever step;
the others go on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tinystack.object.servers import diskfile
from tinystack.object.servers.iothreads import IoThreads

# What a write's first step (blocking: checks, the file written and sealed) gives: the writer to finish with
# the file's name and the hash dir as it was scanned, or None when there is nothing to write; and the answer
# the caller gets once the file is in place (or at once, without a writer).
Prepared = tuple[diskfile.Writer | None, str, diskfile.State | None, Any]
Prepare = Callable[[], Prepared]
Outcome = tuple[Any, BaseException | None]


def write_together(jobs: list[Prepare]) -> list[Outcome]:
    """Blocking: each job's file made, then all of them synced, placed and their dirs synced, step by step. The
    answer or error of each, in order."""
    out: list[Outcome] = []
    live: list[tuple[int, diskfile.Writer, str, diskfile.State | None]] = []
    for i, job in enumerate(jobs):
        try:
            writer, filename, before, answer = job()
        except BaseException as exc:  # the job's own failure, handed to its caller alone
            out.append((None, exc))
            continue
        out.append((answer, None))
        if writer is not None:
            live.append((i, writer, filename, before))

    def step(fn: Callable[[diskfile.Writer, str, diskfile.State | None], None]) -> None:
        nonlocal live
        kept = []
        for i, writer, filename, before in live:
            try:
                fn(writer, filename, before)
            except BaseException as exc:
                writer.abort()
                out[i] = (None, exc)
                continue
            kept.append((i, writer, filename, before))
        live = kept

    step(lambda w, _f, _b: w.start_sync())
    step(lambda w, _f, _b: w.sync())
    step(lambda w, f, b: w.place(f, b, sync_dir=False))
    step(lambda w, _f, _b: w.sync_dir())
    return out


class WriteBatcher:
    """Gathers the writes of one object asked for in one loop turn (a PUT's or DELETE's replicas on this node's
    devices) and sends them to ``io`` in one trip (``write_together``). Writes of different objects still take
    trips of their own, run side by side: one thread doing every write of a busy turn one after the other made
    each wait for all the others' system calls (8 PUTs at once: 24 files in a row, a third fewer PUTs a second
    on a loaded machine)."""

    def __init__(self, io: Callable[[], IoThreads]) -> None:
        self._io = io  # the node's threads as they are at the time (the node makes new ones when it restarts)
        self._pending: dict[str, list[tuple[Prepare, asyncio.Future[Any]]]] = {}
        self._trips: set[asyncio.Task[None]] = set()  # held so that a trip's task is not collected midway

    async def run(self, job: Prepare, key: str) -> Any:
        """``job`` with the others of this loop turn under the same ``key`` (the object's name hash); its answer
        once its file is in place and synced."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            # After the callbacks already queued for this turn: the other replicas' requests run first.
            loop.call_soon(self._flush)
        self._pending.setdefault(key, []).append((job, future))
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for batch in pending.values():
            trip = asyncio.ensure_future(self._trip(batch))
            self._trips.add(trip)
            trip.add_done_callback(self._trips.discard)

    async def _trip(self, batch: list[tuple[Prepare, asyncio.Future[Any]]]) -> None:
        try:
            outcomes = await self._io().run(write_together, [job for job, _ in batch])
        except asyncio.CancelledError:  # the loop is closing: so are its callers
            for _, future in batch:
                future.cancel()
            raise
        except BaseException as exc:  # the trip itself failed (the threads shut down): every caller hears it
            outcomes = [(None, exc)] * len(batch)
        for (_, future), (answer, error) in zip(batch, outcomes, strict=True):
            if future.cancelled():
                continue  # the caller gave up; the write was done all the same
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(answer)

