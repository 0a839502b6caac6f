"""The firewall's rulesets as data: what a change rewrites, what ports share, and the documents that apply it."""

from __future__ import annotations

import json

import pytest

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, Doc, network_doc, port_doc
from tinystack.network.dataplane import firewall, iptables, nftables
from tinystack.network.dataplane.iptables import Tables

NET = network_doc("10.8.0.0/16", vni=7)


def _ports(n: int, rules: list[Doc] | None = None) -> list[Doc]:
    return [port_doc(NET, f"10.8.{1 + i // 250}.{1 + i % 250}", rules) for i in range(n)]


def _tables(ports: list[Doc], version: int = 4, networks: list[str] | None = None) -> Tables:
    chosen = [(p["id"], firewall.port_chains(p, version)) for p in ports if firewall.filtered(p)]
    return firewall.tables(chosen, networks if networks is not None else [NET["id"]])


def _declared(document: str) -> set[str]:
    return {line[1:].split()[0] for line in document.splitlines() if line.startswith(":")}


def _count(tables: Tables) -> int:
    return sum(len(rules) for chains in tables.values() for rules in chains.values())


def test_a_rule_change_on_every_port_rewrites_the_jumps_and_one_shared_chain() -> None:
    ports = _ports(200)
    before = _tables(ports)
    for port in ports:
        port["security_group_rules"] = [EGRESS_ALL, INGRESS_ICMP]
    after = _tables(ports)
    delta = iptables.delta_document(before, after)
    assert delta is not None
    new_ingress = [c for c in after["filter"] if c.startswith("ts-ri") and c not in before["filter"]]
    old_ingress = [c for c in before["filter"] if c.startswith("ts-ri") and c not in after["filter"]]
    assert len(new_ingress) == 1 and len(old_ingress) == 1
    # The dispatch chains (their ingress jumps changed), the new chain, the old one deleted; no egress chain.
    assert _declared(delta) == set(firewall.DISPATCH) | {*new_ingress, *old_ingress}
    assert f"-X {old_ingress[0]}" in delta.splitlines()
    assert f"-A {new_ingress[0]} -p 1 -j RETURN" in delta.splitlines()
    assert "*raw" not in delta and "FORWARD" not in delta
    assert iptables.delta_document(after, after) is None


def test_adding_and_removing_a_port_touches_its_own_chains_and_one_dispatch_chain() -> None:
    ports = _ports(50)
    before = _tables(ports)
    extra = port_doc(NET, "10.8.9.9")
    after = _tables([*ports, extra])
    egress = f"ts-o{extra['id'][:11]}"
    added = iptables.delta_document(before, after)
    assert added is not None and _declared(added) == {egress, firewall.dispatch_chain(extra["id"])}
    removed = iptables.delta_document(after, before)
    assert removed is not None and _declared(removed) == {egress, firewall.dispatch_chain(extra["id"])}
    assert removed.splitlines()[-2:] == [f"-X {egress}", "COMMIT"]


def test_the_last_port_of_a_shared_chain_takes_it_along() -> None:
    lone = port_doc(NET, "10.8.0.5", [EGRESS_ALL, INGRESS_ICMP])
    ports = _ports(3)
    before, after = _tables([*ports, lone]), _tables(ports)
    gone = set(before["filter"]) - set(after["filter"])
    assert f"ts-o{lone['id'][:11]}" in gone and any(c.startswith("ts-ri") for c in gone)
    delta = iptables.delta_document(before, after)
    assert delta is not None and {f"-X {c}" for c in gone} <= set(delta.splitlines())


def test_members_of_one_remote_group_share_a_single_ingress_chain() -> None:
    # The controller expands "ingress from group G" into one rule per member address, on every member.
    ports = _ports(100)
    members = [{"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
                "port_range_max": None, "remote_ip_prefix": f"{p['fixed_ips'][0]['ip_address']}/32"} for p in ports]
    for port in ports:
        port["security_group_rules"] = [EGRESS_ALL, *members]
    tables = _tables(ports)
    shared = [c for c in tables["filter"] if c.startswith("ts-ri")]
    assert len(shared) == 1 and len(tables["filter"][shared[0]]) == 3 + 100 + 1
    assert _count(tables) < 20 * len(ports)  # linear in the group's size, not quadratic


def test_ports_without_port_security_or_of_the_network_get_no_chains() -> None:
    open_port = {**port_doc(NET, "10.8.0.7"), "port_security_enabled": False}
    router = port_doc(NET, "10.8.0.1", owner="network:router_interface")
    tables = _tables([open_port, router])
    assert all(not rules for chain, rules in tables["filter"].items() if chain in firewall.DISPATCH)


def test_conntrack_zones_follow_the_networks() -> None:
    other = network_doc("10.9.0.0/24", vni=8)
    before, after = _tables([], networks=[NET["id"]]), _tables([], networks=[NET["id"], other["id"]])
    delta = iptables.delta_document(before, after)
    assert delta is not None and _declared(delta) == {firewall.ZONE_CHAIN}
    assert f"--zone {firewall.ct_zone(other['id'])}" in delta


def test_a_changed_builtin_chain_needs_a_whole_replacement() -> None:
    before = _tables([])
    after = {**before, "filter": {**before["filter"], "INPUT": ("-j DROP",)}}
    with pytest.raises(iptables.NeedsReplace):
        iptables.delta_document(before, after)


def test_the_whole_document_declares_every_chain_and_saved_output_reads_back_as_its_shape() -> None:
    tables = _tables(_ports(5, [EGRESS_ALL, INGRESS_ICMP]))
    text = iptables.restore_document(tables)
    assert _declared(text) == set(tables["raw"]) | set(tables["filter"])
    assert ":FORWARD ACCEPT [0:0]" in text and text.count("COMMIT") == 2
    saved = "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DNAT\nCOMMIT\n" + text
    assert iptables.saved_shape(saved, {"raw", "filter"}) == iptables.shape(tables)


def test_antispoof_delta_adds_changes_and_removes_port_chains() -> None:
    a, b = port_doc(NET, "10.8.0.3"), port_doc(NET, "10.8.0.4")
    old = firewall.antispoof((p["id"], firewall.antispoof_chain(p)) for p in (a, b))
    moved = {**b, "fixed_ips": [{"subnet_id": NET["subnets"][0]["id"], "ip_address": "10.8.0.40"}]}
    c = port_doc(NET, "10.8.0.5")
    new = firewall.antispoof((p["id"], firewall.antispoof_chain(p)) for p in (moved, c))
    delta = nftables.delta_document(firewall.NFT_TABLE, old, new)
    assert delta is not None
    lines = delta.splitlines()
    chain = {p["id"]: f"p{p['id'][:11]}" for p in (a, b, c)}
    assert f"add chain bridge {firewall.NFT_TABLE} {chain[c['id']]}" in lines
    assert f"flush chain bridge {firewall.NFT_TABLE} {chain[b['id']]}" in lines  # its address changed
    assert any("10.8.0.40" in line for line in lines)
    # The map entry that jumps to a chain goes before the chain itself.
    assert lines[-1] == f"delete chain bridge {firewall.NFT_TABLE} {chain[a['id']]}"
    assert any(x.startswith("delete element") and f'"tap{a["id"][:11]}"' in x for x in lines[:-1])
    assert nftables.delta_document(firewall.NFT_TABLE, new, new) is None


def test_antispoof_listing_is_intact_only_with_every_rule_and_map_entry() -> None:
    port = port_doc(NET, "10.8.0.3")
    want = firewall.antispoof([(port["id"], firewall.antispoof_chain(port))])
    chain, tap = f"p{port['id'][:11]}", f"tap{port['id'][:11]}"

    def listing(rules: int, elements: list[object], hook_rules: int = 1) -> str:
        items: list[dict[str, object]] = [{"metainfo": {}}, {"table": {"name": firewall.NFT_TABLE}},
                                          {"map": {"name": nftables.MAP, "elem": elements}},
                                          {"chain": {"name": nftables.HOOK_CHAIN, "hook": "prerouting"}},
                                          {"chain": {"name": chain}}]
        items += [{"rule": {"chain": nftables.HOOK_CHAIN}}] * hook_rules + [{"rule": {"chain": chain}}] * rules
        return json.dumps({"nftables": items})

    entry = [tap, {"jump": {"target": chain}}]
    assert nftables.intact(want, nftables.listed(listing(2, [entry])))
    assert not nftables.intact(want, nftables.listed(listing(0, [entry])))  # chain flushed
    assert not nftables.intact(want, nftables.listed(listing(2, [])))  # map entry gone
    assert not nftables.intact(want, nftables.listed(listing(2, [entry], hook_rules=0)))  # hook rule gone
