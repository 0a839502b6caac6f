"""The level-triggered reconcile loop every node agent runs (controller-runtime's shape).

A reconciler takes a key, re-reads desired and actual state, acts on the difference and returns a
``Result``. Keys are de-duplicated while queued; failures retry with capped exponential backoff; every
known key is also re-queued on a timer so state lost on the host comes back.

A key enqueued while handling an API request (or a bus message carrying one) keeps that request id, and its
reconcile runs with it, so the agent's log lines name the request that asked for the change. The queue depth
and each reconcile's duration and queue wait go to the process's metrics.

A failure that a retry may cure is logged as one WARNING line; the traceback, at ERROR, comes once, when a
key has failed ``max_attempts`` times in a row (it keeps being retried at the longest backoff after that).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from tinystack.core import log as log_mod
from tinystack.core import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """``requeue_after`` seconds: look again later. ``terminal``: stop retrying (resource is in ERROR)."""

    requeue_after: float | None = None
    terminal: bool = False


DONE = Result()

ReconcileFn = Callable[[str], Awaitable[Result]]
ListKeysFn = Callable[[], Awaitable[Iterable[str]]]


class Reconciler:
    """Runs ``reconcile(key)`` for queued keys, at most one at a time per key."""

    def __init__(
        self,
        name: str,
        reconcile: ReconcileFn,
        list_keys: ListKeysFn | None = None,
        resync_interval: float = 30.0,
        workers: int = 4,
        max_backoff: float = 30.0,
        max_attempts: int = 8,  # 0.1 s doubling: about 25 s of failing before the ERROR
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self._list_keys = list_keys
        self._resync_interval = resync_interval
        self._workers = workers
        self._max_backoff = max_backoff
        self._max_attempts = max_attempts
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._origin: dict[str, str] = {}  # key -> the request id that last asked for it
        self._since: dict[str, float] = {}  # key -> when it was queued
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._metrics_source = 0

    def enqueue(self, key: str) -> None:
        if self._stopping:
            return
        rid = log_mod.request_id.get()
        if rid != "-":
            self._origin[key] = rid
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key in self._active:
            # Being reconciled now: run once more afterwards, with whatever it sees then.
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._since[key] = time.monotonic()
            self._idle.clear()
            self._queue.put_nowait(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        if key in self._timers:
            return
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire_timer, key)

    def _fire_timer(self, key: str) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    def _depth(self) -> list[tuple[tuple[str, ...], float]]:
        return [((self.name,), float(len(self._queued | self._active)))]

    async def start(self) -> None:
        self._metrics_source = metrics.RECONCILE_DEPTH.add(self._depth)
        if self._list_keys is not None:
            await self.resync()
        for i in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}"))
        if self._list_keys is not None:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name=f"{self.name}-resync"))

    async def resync(self) -> None:
        assert self._list_keys is not None
        for key in await self._list_keys():
            self.enqueue(key)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._resync_interval)
            try:
                await self.resync()
            except Exception:
                log.exception("%s: listing keys failed", self.name)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            if self._stopping:
                continue
            self._active.add(key)
            queued_at = self._since.pop(key, None)
            if queued_at is not None:
                metrics.RECONCILE_WAIT.observe(time.monotonic() - queued_at, self.name)
            token = log_mod.request_id.set(self._origin.get(key, "-"))
            try:
                result = await self._run_one(key)
            finally:
                log_mod.request_id.reset(token)
                self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.enqueue(key)
            elif result is not None and result.requeue_after is not None:
                self.enqueue_after(key, result.requeue_after)
            elif result is not None:
                self._origin.pop(key, None)  # done: later runs (resyncs) were not asked for by that request
            if not self._queued and not self._active:
                self._idle.set()

    async def _run_one(self, key: str) -> Result | None:
        started = time.monotonic()
        try:
            result = await self._reconcile(key)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            # Not this worker being stopped but a library's future cancelled under it (a bus channel that
            # closed): a failed run to retry. Raised on, it would end the worker without a word.
            self._failed(key, started, exc)
            return None
        except Exception as exc:
            self._failed(key, started, exc)
            return None
        self._failures.pop(key, None)
        metrics.RECONCILE_LATENCY.observe(time.monotonic() - started, self.name, "ok")
        log.debug("%s: reconciled %s in %.1f ms", self.name, key, (time.monotonic() - started) * 1000)
        return result

    def _failed(self, key: str, started: float, exc: BaseException) -> None:
        metrics.RECONCILE_LATENCY.observe(time.monotonic() - started, self.name, "error")
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(self._max_backoff, 0.1 * 2 ** (failures - 1))
        if failures == self._max_attempts:
            log.error("%s: reconcile %s failed %d times in a row; still retrying", self.name, key,
                      failures, exc_info=exc)
        else:
            log.warning("%s: reconcile %s failed (attempt %d), retrying in %.1fs: %s: %s", self.name, key,
                        failures, delay, type(exc).__name__, exc)
        self.enqueue_after(key, delay)

    async def wait_idle(self) -> None:
        """Wait until nothing is queued or running (timers may still be pending)."""
        await self._idle.wait()

    async def stop(self, grace: float = 30.0) -> None:
        """Stop taking keys, let reconciles in flight finish (a half-made host object could otherwise
        escape the cleanup that follows), then stop the workers."""
        self._stopping = True
        metrics.RECONCILE_DEPTH.remove(self._metrics_source)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        deadline = time.monotonic() + grace
        while self._active and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
