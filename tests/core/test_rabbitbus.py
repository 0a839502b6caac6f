"""The RabbitMQ bus against the broker on loopback: fan-out to every subscriber, competing consumers in a
group, failures isolated. Each test has an exchange of its own and deletes it and its queues afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import aio_pika
import pytest

from tests.rabbit import URL, remove
from tinystack.core.rabbitbus import BusUnavailable, RabbitBus, shared_queue

pytestmark = [pytest.mark.db]


def test_fanout_between_two_connections() -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        exchange, topic = f"test-{uuid.uuid4().hex}", "status.test"
        a, b = RabbitBus(URL, exchange), RabbitBus(URL, exchange)
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
        try:
            for n in [0, 1, 2, "end"]:
                await a.publish(topic, {"n": n})
            await asyncio.wait_for(asyncio.gather(end_a.wait(), end_b.wait()), 10)
        finally:
            await a.close()
            await b.close()
            await remove(exchange, set())
        return got_a, got_b

    got_a, got_b = asyncio.run(scenario())
    assert sorted(got_a) == [0, 1, 2] and sorted(got_b) == [0, 1, 2]


async def waiting(queue: str) -> int:
    """Messages ready in a queue (none are unacknowledged once its consumers have closed)."""
    connection = await aio_pika.connect(URL)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


def test_group_consumes_once_and_fanout_reaches_both() -> None:
    """Two processes (connections) in group ``api``: 100 status messages, each handled by exactly one of them;
    a fan-out topic reaches both; a handler that fails once gets its message again."""

    async def scenario() -> tuple[dict[str, list[int]], dict[str, list[int]], list[int], int]:
        exchange = f"test-{uuid.uuid4().hex}"
        buses = {"a": RabbitBus(URL, exchange), "b": RabbitBus(URL, exchange)}
        shared: dict[str, list[int]] = {"a": [], "b": []}
        fanout: dict[str, list[int]] = {"a": [], "b": []}
        retried: list[int] = []
        failed_once: set[int] = set()
        all_in = asyncio.Event()

        def on_status(name: str) -> Any:
            async def handler(msg: dict[str, Any]) -> None:
                shared[name].append(msg["n"])
                if len(shared["a"]) + len(shared["b"]) >= 100:
                    all_in.set()
            return handler

        def on_cache(name: str) -> Any:
            async def handler(msg: dict[str, Any]) -> None:
                fanout[name].append(msg["n"])
            return handler

        async def flaky(msg: dict[str, Any]) -> None:
            if msg["n"] not in failed_once:
                failed_once.add(msg["n"])
                raise RuntimeError("first delivery fails")
            retried.append(msg["n"])

        try:
            for name, bus in buses.items():
                await bus.connect()
                bus.subscribe("status.test", on_status(name), group="api")
                bus.subscribe("cache.test", on_cache(name))
                await bus.drain()
            buses["a"].subscribe("flaky.test", flaky, group="api")
            await buses["a"].drain()
            for n in range(100):
                await buses["a"].publish("status.test", {"n": n})
            for n in range(3):
                await buses["b"].publish("cache.test", {"n": n})
            await buses["b"].publish("flaky.test", {"n": 7})
            await asyncio.wait_for(all_in.wait(), 20)
            deadline = asyncio.get_running_loop().time() + 10
            while (len(fanout["a"]) < 3 or len(fanout["b"]) < 3 or not retried) \
                    and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            queues = set().union(*(bus.shared_queues for bus in buses.values()))
            for bus in buses.values():
                await bus.close()
            # Closing returns what was delivered but not acknowledged to the queue: nothing left there means no
            # message is still on its way to a second consumer, so the counts above are final.
            left = await waiting(shared_queue(exchange, "status.test", "api"))
            await remove(exchange, queues)
        return shared, fanout, retried, left

    shared, fanout, retried, left = asyncio.run(scenario())
    assert left == 0
    assert sorted(shared["a"] + shared["b"]) == list(range(100))  # exactly once across the two
    assert shared["a"] and shared["b"]  # both consumers took a share
    assert sorted(fanout["a"]) == [0, 1, 2] and sorted(fanout["b"]) == [0, 1, 2]
    assert retried == [7]


def test_a_channel_that_closes_under_a_burst_of_publishes_fails_them_and_the_bus_comes_back() -> None:
    """A channel error while 500 publishes are in flight: each one returns or raises ``BusUnavailable`` (none
    waits for good, none surfaces as a cancellation of its caller, which would end a heartbeat loop or reconcile
    worker without a word), and once the robust connection has reopened the channel, publishes reach the
    subscriber again."""

    async def scenario() -> tuple[dict[str, int], list[int]]:
        exchange = f"test-{uuid.uuid4().hex}"
        bus = RabbitBus(URL, exchange)
        got: list[int] = []

        async def handler(msg: dict[str, Any]) -> None:
            got.append(msg["n"])

        outcomes: dict[str, int] = {}

        async def one(n: int) -> None:
            try:
                await bus.publish("status.burst", {"n": n})
                kind = "ok"
            except BusUnavailable:
                kind = "unavailable"
            except asyncio.CancelledError:
                kind = "cancelled"
            except Exception as exc:  # counted by type, so the assertion names it
                kind = type(exc).__name__
            outcomes[kind] = outcomes.get(kind, 0) + 1

        try:
            await bus.connect()
            bus.subscribe("status.burst", handler, group="api")
            await bus.drain()
            burst = [asyncio.create_task(one(n)) for n in range(500)]
            await asyncio.sleep(0)
            assert bus._channel is not None
            underlay = await bus._channel.get_underlay_channel()
            await underlay.basic_ack(10**9)  # an unknown delivery tag: the broker closes the channel
            await asyncio.wait_for(asyncio.gather(*burst), 60)
            deadline = asyncio.get_running_loop().time() + 30
            while -1 not in got and asyncio.get_running_loop().time() < deadline:
                with contextlib.suppress(BusUnavailable):
                    await bus.publish("status.burst", {"n": -1})
                await asyncio.sleep(0.5)
        finally:
            queues = set(bus.shared_queues)
            await bus.close()
            await remove(exchange, queues)
        return outcomes, got

    outcomes, got = asyncio.run(scenario())
    assert set(outcomes) <= {"ok", "unavailable"}, outcomes
    assert outcomes.get("unavailable"), outcomes  # the channel error did hit publishes in flight
    assert -1 in got  # delivered again after the reconnect
