"""A trunk's subport on the real driver: the guest's frames tagged with the subport's VLAN reach the subport's
network and the answers come back tagged; untagged ones stay on the parent's network; the subport's devices and
filters come back when removed by hand, and go with the subport.

The guest is a namespace whose VLAN interface is played by two eBPF filters on its eth0 (tag everything it
sends, untag what it gets): the machine's kernel has no 802.1Q VLAN devices, and the agent does not need them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.network.dataplane.harness import (
    EGRESS_ALL,
    INGRESS_ICMP,
    Harness,
    guest_vlan,
    network_doc,
    port_doc,
    sh,
)
from tinystack.network.dataplane import names

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]


def filters(h: Harness, dev: str) -> list[str]:
    out = sh("tc", "-j", "filter", "show", "dev", dev, "ingress", netns=h.settings.node_netns, check=False).stdout
    return [f["options"]["prog"]["name"] for f in json.loads(out or "[]") if "options" in f]


def test_tagged_frames_reach_the_subport_network(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        try:
            await h.start()
            rules = [EGRESS_ALL, INGRESS_ICMP]
            parent_net, sub_net = network_doc("10.0.1.0/24", vni=311), network_doc("10.0.2.0/24", vni=312)
            parent = port_doc(parent_net, "10.0.1.3", rules)
            peer_parent = port_doc(parent_net, "10.0.1.4", rules)
            peer_sub = port_doc(sub_net, "10.0.2.4", rules)
            sub = port_doc(sub_net, "10.0.2.3", rules, owner="trunk:subport")
            sub["mac_address"] = parent["mac_address"]  # the guest's VLAN interface keeps its NIC's MAC
            sub["vlan"] = {"parent_id": parent["id"], "segmentation_type": "vlan", "segmentation_id": 100}
            trunk_guest = h.guest(parent, "10.0.1.3/24")
            g_parent, g_sub = h.guest(peer_parent, "10.0.1.4/24"), h.guest(peer_sub, "10.0.2.4/24")
            for kind, doc in (("network", parent_net), ("network", sub_net), ("port", parent),
                              ("port", peer_parent), ("port", peer_sub), ("port", sub)):
                await h.put(kind, doc)
            await h.active(("port", parent), ("port", peer_parent), ("port", peer_sub), ("port", sub))
            node, tap, relay = h.settings.node_netns, names.tap(sub["id"]), names.relay(sub["id"])
            device = json.loads(sh("ip", "-j", "link", "show", tap, netns=node).stdout)[0]
            assert device.get("master") == names.bridge(sub_net["id"]) and device.get("link") == relay
            assert [n.startswith("pop100x") for n in filters(h, names.tap(parent["id"]))] == [True]

            # Untagged: the parent's own network only.
            assert h.ping_eventually(trunk_guest, "10.0.1.4")
            sh("ip", "addr", "add", "10.0.2.3/24", "dev", "eth0", netns=trunk_guest)
            assert not h.ping(trunk_guest, "10.0.2.4")
            # Tagged 100: the subport's network, both ways.
            sh("ip", "addr", "flush", "dev", "eth0", netns=trunk_guest)
            sh("ip", "addr", "add", "10.0.2.3/24", "dev", "eth0", netns=trunk_guest)
            guest_vlan(tmp_path, trunk_guest, 100)
            assert h.ping_eventually(trunk_guest, "10.0.2.4")
            assert h.ping_eventually(g_sub, "10.0.2.3")
            assert not h.ping(g_parent, "10.0.2.3")  # tagged traffic never leaks onto the parent's network

            # Removed by hand (the relay and the parent's filter): the agent's resync puts them back.
            sh("ip", "link", "del", tap, netns=node)
            sh("tc", "filter", "del", "dev", names.tap(parent["id"]), "ingress", netns=node)
            await h.wait_for(lambda: bool(filters(h, names.tap(parent["id"]))) and bool(filters(h, relay)),
                             timeout=15)
            assert h.ping_eventually(trunk_guest, "10.0.2.4", tries=8)

            # Out of the trunk: its devices and the parent's filter go, and the tagged frames reach nothing.
            await h.delete("port", sub["id"])
            await h.settle()
            assert sh("ip", "link", "show", tap, netns=node, check=False).returncode != 0
            assert filters(h, names.tap(parent["id"])) == []
            assert not h.ping(trunk_guest, "10.0.2.4")
        finally:
            await h.close()

    asyncio.run(scenario())


def test_what_a_restarted_agent_no_longer_knows_is_collected(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        try:
            await h.start()
            parent_net, sub_net = network_doc("10.0.1.0/24", vni=321), network_doc("10.0.2.0/24", vni=322)
            parent = port_doc(parent_net, "10.0.1.3")
            sub = port_doc(sub_net, "10.0.2.3", owner="trunk:subport")
            sub["vlan"] = {"parent_id": parent["id"], "segmentation_type": "vlan", "segmentation_id": 7}
            h.guest(parent, "10.0.1.3/24")
            for kind, doc in (("network", parent_net), ("network", sub_net), ("port", parent), ("port", sub)):
                await h.put(kind, doc)
            await h.active(("port", parent), ("port", sub))
            parent_tap, node = names.tap(parent["id"]), h.settings.node_netns
            assert len(filters(h, parent_tap)) == 1
            # A new agent process does not remember which parent the subport was on: removing the subport leaves
            # the parent's filter, and a relay made by hand is nobody's; garbage collection takes both.
            await h.restart(cleanup=False)
            await h.put("network", parent_net)
            await h.put("network", sub_net)
            await h.put("port", parent)
            await h.active(("port", parent))
            sh("ip", "link", "add", "tvrdeadbeef-00", "type", "veth", "peer", "name", "tvrdeadbeef-01", netns=node)
            await h.delete("port", sub["id"])
            await h.settle()
            removed = await h.agent.driver.collect_garbage(h.agent.keep())
            assert filters(h, parent_tap) == []
            assert any(r.startswith("filter pop7x") for r in removed), removed
            links = sh("ip", "-o", "link", "show", netns=node).stdout
            assert names.relay(sub["id"]) not in links and "tvrdeadbeef" not in links
        finally:
            await h.close()

    asyncio.run(scenario())
