"""A storage node's threads for blocking disk work, awaited from its event loop. What ``run_in_executor`` on a
``ThreadPoolExecutor`` does, for the one use the node has of it (run this, give me the result), without the
``concurrent.futures`` machinery around each call: a 4 KiB PUT makes three trips (one per replica), and the
executor's future (a Condition and its RLock), work item, idle-thread semaphore and future chaining were a tenth
of the event loop's time for a PUT. Here a trip is a tuple on a queue and one callback back to the loop."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class IoThreads:
    """Up to ``size`` threads, started as the work needs them and kept until ``shutdown``."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Calls handed over whose answer the loop has not taken yet; read and written on the loop only, so no
        # lock: a thread is started when there are more of them than threads.
        self._busy = 0
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in one of the threads. Cancelling the caller does not stop a call already begun (a
        write finishes, as with an executor); its answer is dropped."""
        if self._closed:
            raise RuntimeError("the node's I/O threads are shut down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._busy += 1
        if self._busy > len(self._threads) and len(self._threads) < self.size:
            thread = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._queue.put((loop, future, fn, args))
        return await future

    def _done(self, future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        self._busy -= 1
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, future, fn, args = item
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # handed to the caller, as an executor's future would
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is left to answer
                loop.call_soon_threadsafe(self._done, future, result, error)
            del item, future, result, error  # not kept alive while this thread waits for the next call

    def shutdown(self) -> None:
        """Each thread ends once the calls handed over before are done (nothing waits for that here)."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
