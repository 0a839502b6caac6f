"""The bus over RabbitMQ, for a cloud split across processes and nodes: same interface as InProcessBus.

One topic exchange; every subscriber gets its own exclusive queue bound to the topic, so a publish fans
out to every subscribed process. Messages are persistent JSON; a handler's failure is logged and the
message acknowledged (reconcilers resync on a timer, so nothing depends on redelivery of a bad message).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustConnection, AbstractRobustExchange

from tinystack.core.bus import Handler

log = logging.getLogger(__name__)

EXCHANGE = "tinystack"


class RabbitBus:
    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._pending: list[tuple[str, Handler]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url)
        self._channel = await self._connection.channel()  # type: ignore[assignment]
        assert self._channel is not None
        await self._channel.set_qos(prefetch_count=64)
        self._exchange = await self._channel.declare_exchange(  # type: ignore[assignment]
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        for topic, handler in self._pending:
            await self._bind(topic, handler)
        self._pending.clear()

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if self._exchange is None:
            raise RuntimeError("RabbitBus.publish before connect()")
        body = json.dumps(message, separators=(",", ":"), default=str).encode()
        await self._exchange.publish(
            aio_pika.Message(body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=topic)

    def subscribe(self, topic: str, handler: Handler) -> None:
        if self._channel is None:
            self._pending.append((topic, handler))
            return
        task = asyncio.get_running_loop().create_task(self._bind(topic, handler))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, topic: str, handler: Handler) -> None:
        assert self._channel is not None and self._exchange is not None
        queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(self._exchange, routing_key=topic)

        async def on_message(msg: AbstractIncomingMessage) -> None:
            async with msg.process(ignore_processed=True):
                try:
                    await handler(json.loads(msg.body))
                except Exception:
                    log.exception("bus handler for %s failed", topic)

        await queue.consume(on_message)

    async def drain(self) -> None:
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._channel = None
            self._exchange = None
