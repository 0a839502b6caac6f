"""Security groups as one iptables-restore document (stateful, per port) plus an nft bridge table for ARP/MAC.

Bridged IP traffic in the node namespace passes the iptables hooks through bridge netfilter
(``net.bridge.bridge-nf-call-iptables``, per namespace), which is where conntrack lives; the kernel
has no bridge-family conntrack, so the stateful part is iptables with ``physdev`` matches (Neutron's
linuxbridge layout) and only the stateless ARP/MAC anti-spoofing uses an nftables ``bridge`` table.
Every chain answers RETURN (allowed) or DROP, and FORWARD accepts at the end, so a packet between two
ports on one bridge passes the sender's egress chain and then the receiver's ingress chain.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Any

from tinystack.network.dataplane import names

Doc = dict[str, Any]

PREFIX = "ts-"
NFT_TABLE = "tinystack_antispoof"
_PROTO_NUM = {"tcp": "6", "udp": "17", "icmp": "1", "icmpv6": "58", "ipv6-icmp": "58", "sctp": "132"}


def filtered(port: Doc) -> bool:
    """Instance ports with port security get a firewall; network:* ports (DHCP, router) are trusted."""
    return str(port.get("device_owner", "")).startswith("compute:") and port.get("port_security_enabled", True) is not False


def ct_zone(network_id: str) -> int:
    # A stable zone per network so that equal 5-tuples of two projects with one CIDR never share a conntrack entry.
    return int(hashlib.sha1(network_id.encode()).hexdigest()[:8], 16) % 65000 + 1


def _version(address: str) -> int:
    return ipaddress.ip_network(address, strict=False).version


def _own_ips(port: Doc, version: int) -> list[tuple[str, str]]:
    """(ip or prefix, mac) pairs the port may send from: fixed IPs and allowed address pairs."""
    mac = port["mac_address"]
    pairs = [(ip["ip_address"], mac) for ip in port.get("fixed_ips", ())]
    for pair in port.get("allowed_address_pairs") or ():
        pairs.append((pair["ip_address"], pair.get("mac_address") or mac))
    return [(ip, m) for ip, m in pairs if _version(ip) == version]


def _proto_match(rule: Doc, version: int) -> list[str]:
    proto = rule.get("protocol")
    if proto in (None, "", "any", "0"):
        return []
    proto = str(proto).lower()
    if proto == "icmp" and version == 6:
        proto = "icmpv6"
    number = _PROTO_NUM.get(proto, proto)
    parts = ["-p", number]
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if number in ("6", "17", "132") and low is not None:
        parts += ["--dport", f"{low}:{high}" if high is not None and high != low else str(low)]
    elif number in ("1", "58") and low is not None:
        kind = "--icmp-type" if number == "1" else "--icmpv6-type"
        parts += [kind, f"{low}/{high}" if high is not None else str(low)]
    return parts


def _rule_lines(chain: str, port: Doc, direction: str, version: int) -> list[str]:
    lines = []
    for rule in port.get("security_group_rules") or ():
        if rule.get("direction") != direction or rule.get("ethertype", "IPv4") != f"IPv{version}":
            continue
        remote = rule.get("remote_ip_prefix")
        if remote and _version(remote) != version:
            continue
        match = _proto_match(rule, version)
        if remote and remote not in ("0.0.0.0/0", "::/0"):
            match = [("-s" if direction == "ingress" else "-d"), remote, *match]
        lines.append(" ".join(["-A", chain, *match, "-j", "RETURN"]))
    return lines


def _port_chains(port: Doc, version: int) -> tuple[list[str], list[str]]:
    """(chain declarations, rules) for one filtered port."""
    tap = names.tap(port["id"])
    short = port["id"][:11]
    ingress, egress, spoof = f"{PREFIX}i{short}", f"{PREFIX}o{short}", f"{PREFIX}s{short}"
    dhcp_c, dhcp_s = ("68", "67") if version == 4 else ("546", "547")
    decl = [f":{ingress} - [0:0]", f":{egress} - [0:0]", f":{spoof} - [0:0]"]
    rules = [
        f"-A FORWARD -m physdev --physdev-out {tap} --physdev-is-bridged -j {ingress}",
        f"-A FORWARD -m physdev --physdev-in {tap} --physdev-is-bridged -j {egress}",
        # Ingress: replies first, then DHCP answers, then the group's rules; everything else is dropped.
        f"-A {ingress} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {ingress} -m conntrack --ctstate INVALID -j DROP",
        f"-A {ingress} -p udp --sport {dhcp_s} --dport {dhcp_c} -j RETURN",
    ]
    if version == 6:
        # Router advertisements and neighbour discovery keep IPv6 alive (types 130-136 except redirect).
        rules += [f"-A {ingress} -p ipv6-icmp --icmpv6-type {t} -j RETURN" for t in (130, 131, 132, 134, 135, 136)]
    rules += _rule_lines(ingress, port, "ingress", version)
    rules.append(f"-A {ingress} -j DROP")
    # Egress: a DHCP request may come from the unspecified address; everything else must pass anti-spoofing.
    if version == 4:
        rules.append(f"-A {egress} -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp --sport 68 --dport 67 -j RETURN")
    else:
        rules += [f"-A {egress} -s ::/128 -p ipv6-icmp --icmpv6-type {t} -j RETURN" for t in (131, 135, 143)]
        rules += [f"-A {egress} -p ipv6-icmp --icmpv6-type {t} -j RETURN" for t in (130, 131, 132, 133, 135, 136, 143)]
    rules.append(f"-A {egress} -j {spoof}")
    sources = _own_ips(port, version)
    if version == 6:
        mac = port["mac_address"]
        sources.append((str(_link_local(mac)), mac))
    for ip, mac in sources:
        rules.append(f"-A {spoof} -s {ip} -m mac --mac-source {mac} -j RETURN")
    rules.append(f"-A {spoof} -j DROP")
    rules += [
        # A guest never answers DHCP for others.
        f"-A {egress} -p udp --sport {dhcp_s} --dport {dhcp_c} -j DROP",
        f"-A {egress} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {egress} -m conntrack --ctstate INVALID -j DROP",
    ]
    rules += _rule_lines(egress, port, "egress", version)
    rules.append(f"-A {egress} -j DROP")
    return decl, rules


def _link_local(mac: str) -> ipaddress.IPv6Address:
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    return ipaddress.IPv6Address(bytes([0xFE, 0x80, 0, 0, 0, 0, 0, 0, *eui]))


def render_iptables(ports: Iterable[Doc], networks: Iterable[str], version: int = 4) -> str:
    """The whole raw+filter ruleset of the node namespace for ``iptables-restore`` (or ip6tables-restore)."""
    raw = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for network_id in sorted(set(networks)):
        raw.append(f"-A PREROUTING -i {names.bridge(network_id)} -j CT --zone {ct_zone(network_id)}")
    raw.append("COMMIT")
    decl, rules = [], []
    for port in sorted(ports, key=lambda p: p["id"]):
        if filtered(port):
            d, r = _port_chains(port, version)
            decl += d
            rules += r
    filt = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", *decl, *rules, "COMMIT"]
    return "\n".join([*raw, *filt]) + "\n"


def expected_rule_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith("-A "))


def render_nft(ports: Iterable[Doc]) -> str:
    """An ``nft -f`` transaction replacing the bridge table that pins each filtered port's MAC and ARP sender."""
    lines = [f"table bridge {NFT_TABLE}", f"delete table bridge {NFT_TABLE}", f"table bridge {NFT_TABLE} {{",
             "  chain prerouting {", "    type filter hook prerouting priority -300; policy accept;"]
    chains: list[str] = []
    for port in sorted(ports, key=lambda p: p["id"]):
        if not filtered(port):
            continue
        tap, chain = names.tap(port["id"]), f"p{port['id'][:11]}"
        lines.append(f'    iifname "{tap}" jump {chain}')
        pairs = _own_ips(port, 4)
        macs = sorted({port["mac_address"], *(m for _, m in pairs)})
        chains += [f"  chain {chain} {{", f"    ether saddr != {{ {', '.join(macs)} }} drop"]
        if pairs:
            ips = ", ".join(sorted({ip for ip, _ in pairs}))
            chains.append(f"    arp saddr ip != {{ {ips} }} arp saddr ip != 0.0.0.0 drop")
        else:
            chains.append("    ether type arp drop")
        chains.append("  }")
    lines += ["  }", *chains, "}"]
    return "\n".join(lines) + "\n"
