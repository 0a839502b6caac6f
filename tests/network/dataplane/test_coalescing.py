"""The agent turns a burst of port documents (one security-group change) into one firewall apply."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, network_doc, port_doc
from tinystack import config
from tinystack.core.bus import InProcessBus
from tinystack.network import agent_settings
from tinystack.network.agent import NetworkAgent
from tinystack.network.drivers.fake import FakeDriver


def test_a_burst_of_port_documents_is_one_apply(tmp_path: Path) -> None:
    async def scenario() -> None:
        cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path), "host": "h1",
                                                       "network__driver": "fake", "network__resync_interval": "600"})
        driver, bus = FakeDriver(), InProcessBus()
        agent = NetworkAgent(bus, agent_settings.load(cfg), driver)
        await agent.start()
        generation = 0

        async def put(kind: str, spec: dict[str, object]) -> None:
            nonlocal generation
            generation += 1
            await bus.publish(agent.topic, {"op": "put", "type": kind, "id": spec["id"], "generation": generation,
                                            "spec": spec})

        try:
            net = network_doc("10.8.0.0/16", vni=5)
            ports = [port_doc(net, f"10.8.0.{i + 2}") for i in range(100)]
            await put("network", net)
            for port in ports:
                await put("port", port)
            await bus.drain()
            await agent.wait_idle()
            before = driver.host.applies
            # The change arrives the way a transport delivers it: one document at a time, the loop turning between.
            for port in ports:
                await put("port", {**port, "security_group_rules": [EGRESS_ALL, INGRESS_ICMP]})
                await asyncio.sleep(0)
            await bus.drain()
            await agent.wait_idle()
            assert driver.host.applies - before <= 2  # without the pause: about one apply per two documents
            assert driver.host.firewall is not None and driver.host.firewall[0].count("-p 1 -j RETURN") == 1
        finally:
            await agent.stop(cleanup=True)
            await bus.close()

    asyncio.run(scenario())
