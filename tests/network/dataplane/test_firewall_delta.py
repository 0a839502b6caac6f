"""Applied by difference, the kernel ends up with exactly the ruleset a whole replacement gives."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, Doc, network_doc, port_doc, sh
from tinystack.network.dataplane import firewall
from tinystack.network.dataplane.secgroups import SecurityGroups

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]

INGRESS_SSH: Doc = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
                    "port_range_max": 22, "remote_ip_prefix": "10.8.0.0/24"}


def _iptables(netns: str, tool: str) -> dict[str, dict[str, list[str]]]:
    """table → chain → rules, from ``tool`` (iptables-save or ip6tables-save); chain order is the kernel's."""
    tables: dict[str, dict[str, list[str]]] = {}
    chains: dict[str, list[str]] = {}
    for line in sh(tool, netns=netns).stdout.splitlines():
        if line.startswith("*"):
            chains = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            chains.setdefault(chain, []).append(rule)
    return tables


def _nft(netns: str) -> dict[str, Any]:
    items = json.loads(sh("nft", "-j", "list", "table", "bridge", firewall.NFT_TABLE, netns=netns).stdout)["nftables"]
    rules: dict[str, list[str]] = {}
    elements: list[str] = []
    for item in items:
        if "chain" in item:
            rules.setdefault(item["chain"]["name"], [])
        elif "rule" in item:
            rules.setdefault(item["rule"]["chain"], []).append(json.dumps(item["rule"]["expr"], sort_keys=True))
        elif "map" in item:
            elements = sorted(json.dumps(e, sort_keys=True) for e in item["map"].get("elem", ()))
    return {"rules": rules, "elements": elements}


def _snapshot(netns: str) -> dict[str, Any]:
    return {"v4": _iptables(netns, "iptables-save"), "v6": _iptables(netns, "ip6tables-save"), "nft": _nft(netns)}


def test_every_delta_leaves_what_a_whole_replacement_would() -> None:
    prefix = "tsf" + secrets.token_hex(3)
    incremental, whole = f"{prefix}-a", f"{prefix}-b"

    async def scenario() -> None:
        sg = SecurityGroups(incremental)
        net, other = network_doc("10.8.0.0/16", vni=11), network_doc("10.9.0.0/24", vni=12)
        ports = [port_doc(net, f"10.8.0.{10 + i}") for i in range(30)]
        networks = [net["id"]]

        async def step() -> None:
            await sg.apply(ports, networks)
            assert await sg.intact()
            fresh = SecurityGroups(whole)
            await fresh.apply(ports, networks)  # nothing applied there yet: a whole replacement
            assert _snapshot(incremental) == _snapshot(whole)

        await step()
        for port in ports[:10]:  # a group gains two rules
            port["security_group_rules"] = [EGRESS_ALL, INGRESS_ICMP, INGRESS_SSH]
        await step()
        ports[3:8] = [port_doc(net, f"10.8.1.{i}") for i in range(5)]  # five ports go, five come
        ports.append(port_doc(other, "10.9.0.5", [EGRESS_ALL]))
        networks.append(other["id"])
        await step()
        ports[0]["fixed_ips"] = [*ports[0]["fixed_ips"], {"subnet_id": "v6", "ip_address": "fd00::5"}]
        ports[1]["allowed_address_pairs"] = [{"ip_address": "10.8.7.0/24", "mac_address": "fa:16:3e:00:00:01"}]
        ports[2]["port_security_enabled"] = False
        await step()
        del ports[10:]  # most ports go: their shared chains too
        networks.remove(other["id"])
        await step()

    try:
        for ns in (incremental, whole):
            sh("ip", "netns", "add", ns)
        asyncio.run(scenario())
    finally:
        for ns in (incremental, whole):
            sh("ip", "netns", "del", ns, check=False)


def test_a_ruleset_edited_behind_the_agents_back_is_replaced_whole() -> None:
    netns = "tsf" + secrets.token_hex(3)

    async def scenario() -> None:
        sg = SecurityGroups(netns)
        net = network_doc("10.8.0.0/16", vni=11)
        ports = [port_doc(net, f"10.8.0.{10 + i}", [EGRESS_ALL, INGRESS_ICMP]) for i in range(5)]
        await sg.apply(ports, [net["id"]])
        before = _snapshot(netns)
        egress = f"{firewall.PREFIX}o{ports[0]['id'][:11]}"
        sh("iptables", "-F", egress, netns=netns)
        sh("ip6tables", "-D", "FORWARD", "-j", firewall.DISPATCH[0], netns=netns)
        sh("nft", "delete", "element", "bridge", firewall.NFT_TABLE, "ports", f"{{ \"tap{ports[2]['id'][:11]}\" }}",
           netns=netns)
        assert not await sg.intact()
        # A change arriving now cannot be applied as a delta to what is really there; the apply starts over.
        ports[4]["security_group_rules"] = [EGRESS_ALL]
        await sg.apply(ports, [net["id"]])
        assert await sg.intact()
        after = _snapshot(netns)
        assert after["v4"]["filter"][egress] == before["v4"]["filter"][egress]
        assert after["v6"]["filter"]["FORWARD"] == before["v6"]["filter"]["FORWARD"]
        assert after["nft"]["elements"] == before["nft"]["elements"]

    try:
        sh("ip", "netns", "add", netns)
        asyncio.run(scenario())
    finally:
        sh("ip", "netns", "del", netns, check=False)
