"""The RabbitMQ bus against the broker on loopback: fan-out to every subscriber, failures isolated."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tinystack.core.rabbitbus import RabbitBus

pytestmark = [pytest.mark.db, pytest.mark.db]

URL = "amqp://guest:guest@127.0.0.1:5672/"


def test_fanout_between_two_connections() -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        topic = f"test.{uuid.uuid4().hex}"
        a, b = RabbitBus(URL), RabbitBus(URL)
        got_a: list[Any] = []
        got_b: list[Any] = []
        # A sentinel published after the three: once both have it, each has had everything before it on its
        # queue (one FIFO queue per subscriber), so the counts below are final and no sleep is needed.
        end_a, end_b = asyncio.Event(), asyncio.Event()

        async def bad(_msg: dict[str, Any]) -> None:
            raise RuntimeError("boom")

        async def on_a(msg: dict[str, Any]) -> None:
            if msg["n"] == "end":
                end_a.set()
            else:
                got_a.append(msg["n"])

        async def on_b(msg: dict[str, Any]) -> None:
            if msg["n"] == "end":
                end_b.set()
            else:
                got_b.append(msg["n"])

        a.subscribe(topic, bad)
        a.subscribe(topic, on_a)
        await a.connect()
        await b.connect()
        b.subscribe(topic, on_b)
        await b.drain()
        for n in [0, 1, 2, "end"]:
            await a.publish(topic, {"n": n})
        await asyncio.wait_for(asyncio.gather(end_a.wait(), end_b.wait()), 10)
        await a.close()
        await b.close()
        return got_a, got_b

    got_a, got_b = asyncio.run(scenario())
    assert sorted(got_a) == [0, 1, 2] and sorted(got_b) == [0, 1, 2]
