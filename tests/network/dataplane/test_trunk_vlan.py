"""A trunk's subport on the real driver: a guest's frames tagged with the subport's VLAN reach the subport's
network, untagged ones stay on the parent's, and the subport's device comes back when it is removed by hand.

The subport's device is a VLAN device of the parent's tap, so the kernel must have 802.1Q (CONFIG_VLAN_8021Q);
on one without it the test is skipped (and the agent reports the subport ERROR, its trunk DEGRADED)."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, Harness, network_doc, port_doc, sh
from tinystack.network.dataplane import names

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]


def kernel_has_vlans() -> bool:
    ns = "tsvlanprobe" + secrets.token_hex(3)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        return sh("ip", "-n", ns, "link", "add", "link", "p0", "name", "p0.7", "type", "vlan", "id", "7",
                  check=False).returncode == 0
    finally:
        sh("ip", "netns", "del", ns, check=False)


def test_tagged_frames_reach_the_subport_network(tmp_path: Path) -> None:
    if not kernel_has_vlans():
        pytest.skip("this kernel has no 802.1Q VLAN devices (CONFIG_VLAN_8021Q): subports cannot be wired here")

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
            sh("ip", "link", "add", "link", "eth0", "name", "eth0.100", "type", "vlan", "id", "100", netns=trunk_guest)
            sh("ip", "addr", "add", "10.0.2.3/24", "dev", "eth0.100", netns=trunk_guest)
            sh("ip", "link", "set", "eth0.100", "up", netns=trunk_guest)
            g_parent, g_sub = h.guest(peer_parent, "10.0.1.4/24"), h.guest(peer_sub, "10.0.2.4/24")
            for kind, doc in (("network", parent_net), ("network", sub_net), ("port", parent),
                              ("port", peer_parent), ("port", peer_sub), ("port", sub)):
                await h.put(kind, doc)
            await h.active(("port", parent), ("port", peer_parent), ("port", peer_sub), ("port", sub))
            device = json.loads(sh("ip", "-j", "-d", "link", "show", names.tap(sub["id"]),
                                   netns=h.settings.node_netns).stdout)[0]
            assert device["linkinfo"]["info_kind"] == "vlan" and device["linkinfo"]["info_data"]["id"] == 100
            assert device.get("link") == names.tap(parent["id"])
            assert device.get("master") == names.bridge(sub_net["id"])
            assert h.ping_eventually(trunk_guest, "10.0.2.4")  # tagged 100: the subport's network
            assert h.ping_eventually(trunk_guest, "10.0.1.4")  # untagged: the parent's own network
            assert h.ping_eventually(g_sub, "10.0.2.3")
            assert not h.ping(g_parent, "10.0.2.4")  # the parent's network does not reach the subport's
            # Removed by hand: the agent's resync puts it back.
            sh("ip", "link", "del", names.tap(sub["id"]), netns=h.settings.node_netns)
            await h.wait_for(lambda: sh("ip", "link", "show", names.tap(sub["id"]), netns=h.settings.node_netns,
                                        check=False).returncode == 0, timeout=15)
            assert h.ping_eventually(trunk_guest, "10.0.2.4", tries=8)
            # Removed from the trunk: the device goes and the tagged frames reach nothing.
            await h.delete("port", sub["id"])
            await h.settle()
            assert sh("ip", "link", "show", names.tap(sub["id"]), netns=h.settings.node_netns,
                      check=False).returncode != 0
            assert not h.ping(trunk_guest, "10.0.2.4")
        finally:
            await h.close()

    asyncio.run(scenario())


def test_without_vlan_devices_the_subport_is_an_error_that_says_why(tmp_path: Path) -> None:
    if kernel_has_vlans():
        pytest.skip("this kernel has 802.1Q VLAN devices: the test above wires the subport")

    async def scenario() -> None:
        h = Harness(tmp_path)
        try:
            await h.start()
            parent_net, sub_net = network_doc("10.0.1.0/24", vni=321), network_doc("10.0.2.0/24", vni=322)
            parent = port_doc(parent_net, "10.0.1.3")
            sub = port_doc(sub_net, "10.0.2.3", owner="trunk:subport")
            sub["vlan"] = {"parent_id": parent["id"], "segmentation_type": "vlan", "segmentation_id": 100}
            h.guest(parent, "10.0.1.3/24")
            for kind, doc in (("network", parent_net), ("network", sub_net), ("port", parent), ("port", sub)):
                await h.put(kind, doc)
            await h.active(("port", parent))
            await h.wait_for(lambda: (h.status_of("port", sub["id"]) or {}).get("status") == "ERROR")
            assert "802.1Q" in h.status_of("port", sub["id"])["reason"]  # type: ignore[index]
            assert (h.status_of("port", parent["id"]) or {}).get("status") == "ACTIVE"
        finally:
            await h.close()

    asyncio.run(scenario())
