"""The in-process bus: fan-out, isolation of failing handlers, close."""

from __future__ import annotations

import asyncio
from typing import Any

from tinystack.core.bus import InProcessBus


def test_fanout_and_failing_handler_isolated() -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        bus = InProcessBus()
        a: list[Any] = []
        b: list[Any] = []

        async def bad(_msg: dict[str, Any]) -> None:
            raise RuntimeError("boom")

        async def good_a(msg: dict[str, Any]) -> None:
            a.append(msg["key"])

        async def good_b(msg: dict[str, Any]) -> None:
            b.append(msg["key"])

        bus.subscribe("t", bad)
        bus.subscribe("t", good_a)
        bus.subscribe("t", good_b)
        bus.subscribe("other", good_b)
        await bus.publish("t", {"key": 1})
        await bus.publish("t", {"key": 2})
        await bus.drain()
        await bus.close()
        await bus.publish("t", {"key": 3})
        await bus.drain()
        return a, b

    a, b = asyncio.run(scenario())
    assert sorted(a) == [1, 2] and sorted(b) == [1, 2]
