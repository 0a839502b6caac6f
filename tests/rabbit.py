"""The RabbitMQ broker on loopback (db tier): its URL, and removal of what a test cloud declared on it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aio_pika

URL = "amqp://guest:guest@127.0.0.1:5672/"


async def remove(exchange: str, queues: Iterable[str], url: str = URL) -> None:
    """Delete an exchange and shared queues (they outlive their consumers, by design) once a test is done."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in queues:
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)


def remove_now(exchange: str, queues: Iterable[str], url: str = URL) -> None:
    asyncio.run(remove(exchange, list(queues), url))
