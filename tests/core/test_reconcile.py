"""The reconcile loop: de-duplication, retry with backoff, requeue, resync."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.waiting import until
from tinystack.core.reconcile import DONE, Reconciler, Result


def test_keys_are_deduplicated_and_rerun_when_dirty() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        gate = asyncio.Event()

        async def reconcile(key: str) -> Result:
            seen.append(key)
            if len(seen) == 1:
                await gate.wait()
            return DONE

        r = Reconciler("t", reconcile, workers=1)
        await r.start()
        r.enqueue("a")
        await until(lambda: seen == ["a"], 5, "the first run of a")
        r.enqueue("a")  # while running: runs once more afterwards
        r.enqueue("a")
        gate.set()
        await r.wait_idle()  # idle only once the rerun is done; nothing enqueues after it
        await r.stop()
        return seen

    assert asyncio.run(scenario()) == ["a", "a"]


def test_failures_retry_then_succeed() -> None:
    async def scenario() -> int:
        attempts = 0

        async def reconcile(key: str) -> Result:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                raise RuntimeError("host not ready")
            return DONE

        r = Reconciler("t", reconcile, workers=1)
        await r.start()
        r.enqueue("k")
        await until(lambda: attempts >= 3, 5, "a third attempt")
        await r.stop()
        return attempts

    assert asyncio.run(scenario()) == 3


def test_resync_lists_keys_at_start_and_requeue_after() -> None:
    async def scenario() -> dict[str, int]:
        counts: dict[str, int] = {}

        async def reconcile(key: str) -> Result:
            counts[key] = counts.get(key, 0) + 1
            return Result(requeue_after=0.01) if key == "x" and counts[key] < 3 else DONE

        async def list_keys() -> list[str]:
            return ["x", "y"]

        r = Reconciler("t", reconcile, list_keys=list_keys, resync_interval=60, workers=2)
        await r.start()
        # x's third run and y's first return DONE: nothing is requeued after them (the resync is a minute away).
        await until(lambda: counts.get("x") == 3 and "y" in counts, 5, "x reconciled three times and y once")
        await r.wait_idle()
        await r.stop()
        return counts

    assert asyncio.run(scenario()) == {"x": 3, "y": 1}


def test_stop_lets_reconciles_in_flight_finish() -> None:
    async def scenario() -> list[str]:
        events: list[str] = []

        async def reconcile(key: str) -> Result:
            events.append(f"start {key}")
            await asyncio.sleep(0.1)
            events.append(f"end {key}")
            return DONE

        r = Reconciler("t", reconcile, workers=1)
        await r.start()
        r.enqueue("a")
        r.enqueue("b")
        await until(lambda: events == ["start a"], 5, "a in flight")
        await r.stop()
        r.enqueue("c")  # ignored once stopping
        return events

    assert asyncio.run(scenario()) == ["start a", "end a"]


def test_retried_failures_warn_in_one_line_and_exhausted_ones_log_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> int:
        attempts = 0

        async def reconcile(key: str) -> Result:
            nonlocal attempts
            attempts += 1
            raise RuntimeError("host not ready")

        r = Reconciler("t", reconcile, workers=1, max_backoff=0.01, max_attempts=3)
        await r.start()
        r.enqueue("k")
        await until(lambda: attempts >= 4, 5, "a fourth attempt")
        await r.stop()
        return attempts

    with caplog.at_level(logging.DEBUG, logger="tinystack.core.reconcile"):
        assert asyncio.run(scenario()) >= 4
    records = [r for r in caplog.records if r.name == "tinystack.core.reconcile" and r.levelno >= logging.WARNING]
    assert [r.levelno for r in records[:4]] == [logging.WARNING, logging.WARNING, logging.ERROR, logging.WARNING]
    assert [r.exc_info is not None for r in records[:4]] == [False, False, True, False]
    assert "host not ready" in records[0].getMessage()


def test_a_cancelled_future_under_a_reconcile_is_a_failure_not_the_end_of_the_worker() -> None:
    """A library's future cancelled under a reconcile (aiormq's confirm of a publish whose channel closed) raises
    CancelledError in the worker though nobody cancelled it: the key is retried and the worker lives on."""

    async def scenario() -> list[str]:
        seen: list[str] = []

        async def reconcile(key: str) -> Result:
            seen.append(key)
            if len(seen) == 1:
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_soon(future.cancel)
                await future
            return DONE

        r = Reconciler("t", reconcile, workers=1)
        await r.start()
        r.enqueue("k")
        await until(lambda: seen == ["k", "k"], 5, "the retry after the cancelled future")
        r.enqueue("other")  # the one worker still takes keys
        await until(lambda: seen[-1] == "other", 5, "the next key")
        await r.stop()
        return seen

    assert asyncio.run(scenario()) == ["k", "k", "other"]


def test_stop_still_cancels_a_reconcile_in_flight() -> None:
    async def scenario() -> bool:
        started, finished = asyncio.Event(), False

        async def reconcile(key: str) -> Result:
            nonlocal finished
            started.set()
            await asyncio.sleep(3600)
            finished = True
            return DONE

        r = Reconciler("t", reconcile, workers=1)
        await r.start()
        r.enqueue("k")
        await started.wait()
        await asyncio.wait_for(r.stop(grace=0.1), 5)
        return finished

    assert asyncio.run(scenario()) is False
