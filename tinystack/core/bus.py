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

Both put an *envelope* (``seal``) on each message: the request id of the API request that led to it, the publish
time and the sender's tinystack version. The receiving side takes it off before the handler sees the message
(``opened``): the handler runs with that request id in its log lines, the lag goes to the metrics, and
``current_envelope`` lets a handler (``tinystack doctor`` listening to heartbeats) see who sent what when.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol

from tinystack import __version__
from tinystack.core import log as log_mod
from tinystack.core import metrics

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]

ENVELOPE = "_envelope"
# The envelope of the message being handled in this context (None outside a handler).
current_envelope: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("bus_envelope",
                                                                                            default=None)


def seal(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` with the envelope: originating request id, publish time, sender version."""
    rid = log_mod.request_id.get()
    return {**message, ENVELOPE: {"request_id": rid if rid != "-" else None, "sent": time.time(),
                                  "version": __version__}}


@contextlib.contextmanager
def opened(topic: str, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Take the envelope off ``message`` and handle it in its light: the request id set for the log lines,
    the bus lag recorded, the envelope readable through ``current_envelope``."""
    envelope = message.pop(ENVELOPE, None)
    if not isinstance(envelope, dict):
        envelope = {}
    sent = envelope.get("sent")
    if isinstance(sent, int | float):
        metrics.BUS_LAG.observe(max(0.0, time.time() - sent), metrics.topic_family(topic))
    rid = envelope.get("request_id")
    rid_token = log_mod.request_id.set(rid) if isinstance(rid, str) and rid else None
    env_token = current_envelope.set(envelope)
    outcome = "error"
    try:
        yield message
        outcome = "ok"
    finally:
        metrics.BUS_HANDLED.inc(metrics.topic_family(topic), outcome)
        current_envelope.reset(env_token)
        if rid_token is not None:
            log_mod.request_id.reset(rid_token)


# Seconds after which an agent says every unchanged status again: a report the controller dropped (its handler
# failed twice) comes back that much later, as Neutron's agents resync in full now and then.
REPORT_REFRESH = 600.0


class SentReports(dict[str, Any]):
    """What an agent's ``publish_changed`` sent last per resource; ``refresh_due`` (called on each resync) empties
    it once every ``every`` seconds, so every status goes out again."""

    def __init__(self, every: float = REPORT_REFRESH) -> None:
        super().__init__()
        self.every = every
        self._since = time.monotonic()

    def refresh_due(self) -> None:
        now = time.monotonic()
        if now - self._since >= self.every:
            self.clear()
            self._since = now


async def publish_changed(bus: Bus, sent: dict[str, Any], key: str, fingerprint: Any, topic: str,
                          message: dict[str, Any]) -> None:
    """Publish an agent's status report ``message`` unless ``fingerprint`` is what ``sent`` says went out last for
    ``key``. A publish that fails is forgotten, so the next reconcile of ``key`` sends it again: kept, it would
    make every later resync stay quiet about a report the controller never had."""
    if sent.get(key) == fingerprint:
        return
    sent[key] = fingerprint
    try:
        await bus.publish(topic, message)
    except BaseException:
        if sent.get(key) == fingerprint:
            del sent[key]
        raise


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
        metrics.BUS_PUBLISHED.inc(metrics.topic_family(topic))
        handlers = list(self._fanout.get(topic, ()))
        handlers += [group.next() for group in self._groups.get(topic, {}).values()]
        for handler in handlers:
            task = asyncio.get_running_loop().create_task(self._deliver(topic, handler, seal(message)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def subscribe(self, topic: str, handler: Handler, *, group: str | None = None) -> None:
        if group is None:
            self._fanout.setdefault(topic, []).append(handler)
        else:
            self._groups.setdefault(topic, {}).setdefault(group, _Group()).members.append(handler)

    async def _deliver(self, topic: str, handler: Handler, message: dict[str, Any]) -> None:
        try:
            with opened(topic, message) as body:
                await handler(body)
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
