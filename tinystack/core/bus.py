"""The message bus between API processes and node agents: keys and heartbeats, never database rows.

A subscription is either *shared* or *fan-out*:

- shared (``group="..."``): the subscribers of one topic with one group name are competing consumers; each
  message goes to one of them. The API processes consume status reports and resync requests this way, so N
  processes do the work once, not N times.
- fan-out (no group): every subscriber gets every message, for what each process must apply itself (its
  caches, its in-memory view of the agents), and for an agent's own topic (``agent.<kind>.<host>``), which it
  alone subscribes to.

There is no unsubscribe: a subscriber lives as long as its bus (on RabbitMQ, its connection), so a component
that stops and starts again on the same bus must not join a group twice.

``InProcessBus`` serves the one-process cloud with these semantics; ``RabbitBus`` keeps the same interface over
a broker. Delivery is at least once, so every handler must be idempotent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Bus(Protocol):
    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Deliver ``message`` to every fan-out subscriber of ``topic`` and to one subscriber of each group."""

    def subscribe(self, topic: str, handler: Handler, *, group: str | None = None) -> None:
        """Call ``handler`` for messages published on ``topic`` from now on: each one (``group`` None), or
        the share of them that falls to it among the subscribers with the same ``group``."""

    async def drain(self) -> None:
        """Wait until what was published from here so far has been handed on."""

    async def close(self) -> None:
        """Stop delivering; pending messages are dropped (publishers re-send on reconcile)."""


class _Group:
    """The members of one shared subscription, taking messages in turn."""

    def __init__(self) -> None:
        self.members: list[Handler] = []
        self._turn: Iterator[int] = itertools.count()

    def next(self) -> Handler:
        return self.members[next(self._turn) % len(self.members)]


class InProcessBus:
    """Topics on one event loop. A failing handler is logged and does not stop the others; its message is not
    handed to another member (as before groups existed: the reconcilers resync on a timer)."""

    def __init__(self) -> None:
        self._fanout: dict[str, list[Handler]] = {}
        self._groups: dict[str, dict[str, _Group]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if self._closed:
            return
        handlers = list(self._fanout.get(topic, ()))
        handlers += [group.next() for group in self._groups.get(topic, {}).values()]
        for handler in handlers:
            task = asyncio.get_running_loop().create_task(self._deliver(topic, handler, dict(message)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def subscribe(self, topic: str, handler: Handler, *, group: str | None = None) -> None:
        if group is None:
            self._fanout.setdefault(topic, []).append(handler)
        else:
            self._groups.setdefault(topic, {}).setdefault(group, _Group()).members.append(handler)

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
