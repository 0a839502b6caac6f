"""The bus over RabbitMQ, for a cloud split across processes and nodes: same interface as InProcessBus.

One topic exchange (``[bus] exchange``, so clouds sharing a broker stay apart). A fan-out subscription gets an
exclusive queue of its own bound to the topic; a shared one (``group``) consumes the durable queue
``<exchange>.<topic>.<group>``, which every subscriber of that group in every process consumes from, so each
message reaches one of them. Shared queues are dropped by the broker after an hour without consumers (a cloud
that was removed); what they held the agents report again on their periodic resyncs.

Messages are persistent JSON with a unique ``message_id``, acknowledged after the handler returns. A publish
waits for the broker's confirm at most ``PUBLISH_TIMEOUT`` (300) seconds and then raises ``BusUnavailable``, as it does
when the channel under it closes: heartbeats, reconcilers and a build whose put cannot go out (the conductor's
publisher takes it over) try again later, and no caller waits for good. A handler that fails has its message put
back once (another consumer of the group may take it); a second failure is logged and the message
dropped, since the reconcilers resync on a timer and a poison message must not loop forever.

``TINYSTACK_TRACE_STATUS=<file>`` (tests only) appends one JSON line per ``status.*`` message this process handled,
with its ``message_id``: the race test (tests/e2e/test_api_race.py) checks that no report was handled twice, in
one process or across several.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
)

from tinystack.core import metrics
from tinystack.core.bus import Handler, opened, seal

log = logging.getLogger(__name__)

EXCHANGE = "tinystack"
# Milliseconds a shared queue lives on without a consumer.
SHARED_QUEUE_EXPIRES = 3600 * 1000
TRACE_ENV = "TINYSTACK_TRACE_STATUS"
# Seconds a publish waits for its confirm before it fails: long, because a loaded broker is slow to confirm
# (10 s failed 894 of benchmarks/split_boots.py's 1,000 builds, whose puts waited longer), yet bounded, so
# that a confirm that never comes cannot stop a heartbeat loop or a reconcile for good.
PUBLISH_TIMEOUT = 300.0


class BusUnavailable(ConnectionError):
    """A publish the broker did not confirm in time, or whose channel went away under it."""


def shared_queue(exchange: str, topic: str, group: str) -> str:
    return f"{exchange}.{topic}.{group}"


class RabbitBus:
    def __init__(self, url: str, exchange: str = EXCHANGE) -> None:
        self.url = url
        self.exchange_name = exchange
        # Names of the shared queues this bus declared (tests delete them afterwards).
        self.shared_queues: set[str] = set()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._pending: list[tuple[str, Handler, str | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._trace = os.environ.get(TRACE_ENV) or None

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url)
        self._channel = await self._connection.channel()  # type: ignore[assignment]
        assert self._channel is not None
        await self._channel.set_qos(prefetch_count=64)
        self._exchange = await self._channel.declare_exchange(  # type: ignore[assignment]
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        for topic, handler, group in self._pending:
            await self._bind(topic, handler, group)
        self._pending.clear()

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if self._exchange is None:
            raise RuntimeError("RabbitBus.publish before connect()")
        metrics.BUS_PUBLISHED.inc(metrics.topic_family(topic))
        body = json.dumps(seal(message), separators=(",", ":"), default=str).encode()
        try:
            await self._exchange.publish(
                aio_pika.Message(body, content_type="application/json",
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=uuid.uuid4().hex),
                routing_key=topic, timeout=PUBLISH_TIMEOUT)
        except TimeoutError as exc:
            raise BusUnavailable(f"no confirm from the broker within {PUBLISH_TIMEOUT:g} s for {topic}") from exc
        except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError) as exc:
            # The channel closed under it, or is closed until the robust connection has reopened it (~5 s).
            raise BusUnavailable(f"publish of {topic} failed: {type(exc).__name__}: {exc}") from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this task is being stopped
            # A confirm future cancelled by the client library when its channel closed: to the caller that is a
            # failed publish, not its own cancellation (which would end a heartbeat loop or reconcile worker).
            raise BusUnavailable(f"publish of {topic} interrupted: the channel closed") from None

    def subscribe(self, topic: str, handler: Handler, *, group: str | None = None) -> None:
        if self._channel is None:
            self._pending.append((topic, handler, group))
            return
        task = asyncio.get_running_loop().create_task(self._bind(topic, handler, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _queue(self, topic: str, group: str | None) -> AbstractQueue:
        assert self._channel is not None
        if group is None:
            return await self._channel.declare_queue(exclusive=True, auto_delete=True)
        name = shared_queue(self.exchange_name, topic, group)
        self.shared_queues.add(name)
        return await self._channel.declare_queue(name, durable=True,
                                                 arguments={"x-expires": SHARED_QUEUE_EXPIRES})

    async def _bind(self, topic: str, handler: Handler, group: str | None) -> None:
        assert self._exchange is not None
        queue = await self._queue(topic, group)
        await queue.bind(self._exchange, routing_key=topic)

        async def on_message(msg: AbstractIncomingMessage) -> None:
            try:
                with opened(topic, json.loads(msg.body)) as body:
                    await handler(body)
            except Exception:
                if not msg.redelivered:
                    log.warning("bus handler for %s failed; the message goes back once", topic, exc_info=True)
                    await msg.nack(requeue=True)
                    return
                log.exception("bus handler for %s failed again; message dropped", topic)
                await msg.reject(requeue=False)
                return
            await msg.ack()
            if self._trace and topic.startswith("status."):
                self._record(topic, msg)

        await queue.consume(on_message)

    def _record(self, topic: str, msg: AbstractIncomingMessage) -> None:
        body = json.loads(msg.body)
        line = {"message_id": msg.message_id, "topic": topic, "type": body.get("type"), "id": body.get("id"),
                "host": body.get("host"), "observed_generation": body.get("observed_generation")}
        assert self._trace is not None
        with open(self._trace, "a") as f:
            f.write(json.dumps(line) + "\n")

    async def drain(self) -> None:
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._channel = None
            self._exchange = None
