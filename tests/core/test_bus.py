"""The in-process bus: fan-out, shared groups (competing consumers), isolation of failing handlers, close."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tinystack.core.bus import InProcessBus, SentReports, publish_changed


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


def test_group_members_share_messages_and_fanout_gets_all() -> None:
    """Competing consumers: each message to one member of each group; fan-out subscribers get every one."""

    async def scenario() -> dict[str, list[int]]:
        bus = InProcessBus()
        got: dict[str, list[int]] = {name: [] for name in ("api1", "api2", "other", "fan1", "fan2")}

        def record(name: str) -> Any:
            async def handler(msg: dict[str, Any]) -> None:
                got[name].append(msg["n"])
            return handler

        bus.subscribe("status.x", record("api1"), group="api")
        bus.subscribe("status.x", record("api2"), group="api")
        bus.subscribe("status.x", record("other"), group="audit")
        bus.subscribe("status.x", record("fan1"))
        bus.subscribe("status.x", record("fan2"))
        for n in range(10):
            await bus.publish("status.x", {"n": n})
        await bus.drain()
        await bus.close()
        return got

    got = asyncio.run(scenario())
    shared = got["api1"] + got["api2"]
    assert sorted(shared) == list(range(10))  # each exactly once within the group
    assert got["api1"] and got["api2"]  # and both members took part
    for name in ("other", "fan1", "fan2"):
        assert sorted(got[name]) == list(range(10))


def test_group_failure_is_isolated() -> None:
    async def scenario() -> list[int]:
        bus = InProcessBus()
        ok: list[int] = []

        async def bad(_msg: dict[str, Any]) -> None:
            raise RuntimeError("boom")

        async def good(msg: dict[str, Any]) -> None:
            ok.append(msg["n"])

        bus.subscribe("t", bad, group="g")
        bus.subscribe("t", good, group="g")
        for n in range(4):
            await bus.publish("t", {"n": n})
        await bus.drain()
        return ok

    assert len(asyncio.run(scenario())) == 2


def test_a_status_report_whose_publish_failed_is_sent_again_and_a_sent_one_is_not() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.sent: list[dict[str, Any]] = []
            self.fail = 1

        async def publish(self, topic: str, message: dict[str, Any]) -> None:
            if self.fail:
                self.fail -= 1
                raise ConnectionError("broker away")
            self.sent.append(message)

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        bus, last = Flaky(), dict[str, Any]()
        with pytest.raises(ConnectionError):
            await publish_changed(bus, last, "port:1", (1, "ACTIVE"), "status.network", {"n": 1})
        assert "port:1" not in last  # forgotten: the next reconcile says it again
        for n in (2, 3):
            await publish_changed(bus, last, "port:1", (1, "ACTIVE"), "status.network", {"n": n})
        return bus.sent, last

    sent, last = asyncio.run(scenario())
    assert sent == [{"n": 2}]  # sent once it went through, not again while unchanged
    assert last == {"port:1": (1, "ACTIVE")}


def test_sent_reports_are_forgotten_once_per_refresh() -> None:
    sent = SentReports(every=3600)
    sent["port:1"] = (1, "ACTIVE")
    sent.refresh_due()
    assert sent == {"port:1": (1, "ACTIVE")}  # not due yet: unchanged reports stay quiet
    sent.every = 0
    sent.refresh_due()
    assert sent == {}  # due: every status goes out again on the next reconcile
