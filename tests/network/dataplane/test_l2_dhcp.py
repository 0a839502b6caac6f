"""Real packets on the agent's dataplane: DHCP leases, security groups, anti-spoofing, project isolation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, Harness, dhcp_doc, network_doc, port_doc, sh

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]


def test_dhcp_lease_and_icmp_only_once_a_rule_allows_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        try:
            await h.start()
            net = network_doc("10.0.0.0/24", vni=101)
            p1, p2 = port_doc(net, "10.0.0.3"), port_doc(net, "10.0.0.4")
            g1, g2 = h.guest(p1), h.guest(p2, "10.0.0.4/24")
            await h.put("network", net)
            dhcp = dhcp_doc(net, "10.0.0.2", [p1, p2])
            (tmp_path / "state").mkdir(exist_ok=True)
            (tmp_path / "state" / "metadata-secret").write_text("0123456789abcdef" * 4)
            dhcp["metadata"]["upstream"] = str(tmp_path / "state" / "metadata.sock")
            await h.put("dhcp", dhcp)
            await h.put("port", p1)
            await h.put("port", p2)
            await h.active(("network", net), ("dhcp", net), ("port", p1), ("port", p2))
            lease = await asyncio.to_thread(h.dhcp_client, g1)
            assert "ip=10.0.0.3 " in lease and "router=10.0.0.1" in lease
            assert "169.254.169.254/32 10.0.0.2" in lease  # option 121: metadata via the DHCP port
            assert "0.0.0.0/0 10.0.0.1" in lease
            # The metadata proxy listens on 169.254.169.254:80 inside qdhcp-<net>.
            await h.wait_for(lambda: ":80 " in sh("ss", "-ltn", netns=f"qdhcp-{net['id']}").stdout)
            assert not h.ping(g1, "10.0.0.4")  # default: no ingress allowed
            p2["security_group_rules"] = [EGRESS_ALL, INGRESS_ICMP]
            await h.put("port", p2)
            await h.settle()
            assert h.ping_eventually(g1, "10.0.0.4")
            assert not h.ping(g2, "10.0.0.3")  # p1 still admits nothing
            # Anti-spoofing: a second address on g1 is not the port's, so its packets are dropped.
            sh("ip", "-n", g1, "addr", "add", "10.0.0.99/24", "dev", "eth0")
            assert not h.ping(g1, "10.0.0.4", source="10.0.0.99")
        finally:
            await h.close()
        leftovers = [p.name for p in Path("/run/netns").iterdir() if p.name.startswith(h.prefix) or net["id"] in p.name]
        assert leftovers == []

    asyncio.run(scenario())


def test_two_projects_with_one_cidr_stay_isolated(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        try:
            await h.start()
            net_a, net_b = network_doc("10.0.0.0/24", vni=201, project="a"), network_doc("10.0.0.0/24", vni=202, project="b")
            rules = [EGRESS_ALL, INGRESS_ICMP]
            a1, a2 = port_doc(net_a, "10.0.0.3", rules), port_doc(net_a, "10.0.0.4", rules)
            b1 = port_doc(net_b, "10.0.0.4", rules)
            ga1, ga2, gb1 = h.guest(a1, "10.0.0.3/24"), h.guest(a2, "10.0.0.4/24"), h.guest(b1, "10.0.0.4/24")
            for doc in (net_a, net_b):
                await h.put("network", doc)
            for doc in (a1, a2, b1):
                await h.put("port", doc)
            await h.active(("port", a1), ("port", a2), ("port", b1))
            assert h.ping_eventually(ga1, "10.0.0.4")  # reaches a2, its own project's guest
            sh("ip", "-n", ga2, "link", "set", "eth0", "down")
            assert not h.ping(ga1, "10.0.0.4")  # b1 has the same address but sits on another network
            assert not h.ping(gb1, "10.0.0.3")
        finally:
            await h.close()

    asyncio.run(scenario())
