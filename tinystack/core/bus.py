"""The message bus between API processes and node agents: keys and heartbeats, never database rows.

``InProcessBus`` serves the one-process cloud; a RabbitMQ implementation keeps the same interface.
Delivery is at least once, so every handler must be idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Bus(Protocol):
    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Deliver ``message`` to every subscriber of ``topic`` (fan-out)."""

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call ``handler`` for each message published on ``topic`` from now on."""

    async def drain(self) -> None:
        """Wait until what was published from here so far has been handed on."""

    async def close(self) -> None:
        """Stop delivering; pending messages are dropped (publishers re-send on reconcile)."""


class InProcessBus:
    """Fan-out topics on one event loop. A failing handler is logged and does not stop the others."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if self._closed:
            return
        for handler in list(self._handlers.get(topic, ())):
            task = asyncio.get_running_loop().create_task(self._deliver(topic, handler, dict(message)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    async def _deliver(self, topic: str, handler: Handler, message: dict[str, Any]) -> None:
        try:
            await handler(message)
        except Exception:
            log.exception("bus handler for %s failed", topic)

    async def drain(self) -> None:
        """Wait until every message published so far has been handled (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
