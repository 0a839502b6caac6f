"""The storage node's I/O threads keep what an executor gave: the answer or the error of each call, no more threads
than asked for, a call whose caller gave up still finished, and an end once shut down."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tinystack.object.servers.iothreads import IoThreads

pytestmark = pytest.mark.unit


def test_answers_errors_and_at_most_size_threads() -> None:
    pool = IoThreads(3, "test-io")
    inside = threading.Barrier(3)

    def meet(i: int) -> tuple[int, str]:
        inside.wait(timeout=10)  # three calls at once: each in a thread of its own
        return i, threading.current_thread().name

    def fail() -> None:
        raise ValueError("no")

    async def main() -> None:
        got = await asyncio.gather(*(pool.run(meet, i) for i in range(3)))
        assert [i for i, _ in got] == [0, 1, 2]
        assert len({name for _, name in got}) == 3
        with pytest.raises(ValueError, match="no"):
            await pool.run(fail)
        assert await asyncio.gather(*(pool.run(pow, 2, i) for i in range(50))) == [2 ** i for i in range(50)]

    asyncio.run(main())
    assert len(pool._threads) == 3
    pool.shutdown()
    for thread in pool._threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    with pytest.raises(RuntimeError):
        asyncio.run(pool.run(pow, 2, 2))


def test_a_call_whose_caller_gave_up_still_runs_to_its_end() -> None:
    pool = IoThreads(2, "test-io")
    release, finished = threading.Event(), threading.Event()

    def slow() -> int:
        release.wait(timeout=10)
        finished.set()
        return 1

    async def main() -> None:
        task = asyncio.ensure_future(pool.run(slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.to_thread(finished.wait, 10)
        assert await pool.run(pow, 3, 2) == 9  # the dropped answer left the pool as it was

    asyncio.run(main())
    assert finished.is_set()
    pool.shutdown()
