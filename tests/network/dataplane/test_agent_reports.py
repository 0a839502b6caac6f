"""The network agent says each status once, and again when it must: after a publish that failed, and once per
refresh, so a report the controller dropped (its handler failed twice) comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.network.dataplane.harness import network_doc, port_doc
from tests.waiting import until
from tinystack import config
from tinystack.core.bus import InProcessBus
from tinystack.network import agent_settings
from tinystack.network.agent import NetworkAgent
from tinystack.network.drivers.fake import FakeDriver


def test_a_lost_report_is_said_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path), "host": "h1",
                                                       "network__driver": "fake", "network__resync_interval": "0.1"})
        bus = InProcessBus()
        agent = NetworkAgent(bus, agent_settings.load(cfg), FakeDriver())
        agent.reported.every = 3600
        reports: list[str] = []

        async def on_status(msg: dict[str, Any]) -> None:
            reports.append(f"{msg['type']}:{msg['id']}:{msg['status']['status']}")

        bus.subscribe("status.network", on_status)
        publish, failures = bus.publish, [1]

        async def flaky(topic: str, message: dict[str, Any]) -> None:
            if topic == "status.network" and message.get("type") == "port" and failures:
                failures.pop()
                raise ConnectionError("broker away")
            await publish(topic, message)

        bus.publish = flaky  # type: ignore[method-assign]
        await agent.start()
        try:
            net = network_doc("10.9.0.0/16", vni=9)
            port = port_doc(net, "10.9.0.2")
            await bus.publish(agent.topic, {"op": "put", "type": "network", "id": net["id"], "generation": 1,
                                            "spec": net})
            await bus.publish(agent.topic, {"op": "put", "type": "port", "id": port["id"], "generation": 1,
                                            "spec": port})
            mine = f"port:{port['id']}:"
            # The first report failed on the bus; a later resync of the port says it after all.
            await until(lambda: any(r.startswith(mine) for r in reports), 10, "the port's report after the failure")
            assert not failures
            said = sum(r.startswith(mine) for r in reports)
            await asyncio.sleep(0.5)  # several resyncs: unchanged, so quiet
            assert sum(r.startswith(mine) for r in reports) == said
            agent.reported.every = 0  # the refresh is due: everything is said again
            await until(lambda: sum(r.startswith(mine) for r in reports) > said, 10, "the refreshed report")
        finally:
            await agent.stop(cleanup=True)
            await bus.close()

    asyncio.run(scenario())
