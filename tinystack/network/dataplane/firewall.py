"""Security groups as iptables chains per port (stateful, per port) plus an nft bridge table for ARP/MAC.

Bridged IP traffic in the node namespace passes the iptables hooks through bridge netfilter
(``net.bridge.bridge-nf-call-iptables``, per namespace), which is where conntrack lives; the kernel
has no bridge-family conntrack, so the stateful part is iptables with ``physdev`` matches (Neutron's
linuxbridge layout) and only the stateless ARP/MAC anti-spoofing uses an nftables ``bridge`` table.

Layout, chosen so that a change rewrites only the chains it touches (see ``iptables.delta_document``)
and the rules a port shares with others exist once:
- FORWARD jumps to 16 dispatch chains ``ts-d0``..``ts-df``; a port's two physdev jumps sit in one of
  them (picked by a hash of its id), so adding a port rewrites ~1/16 of the jumps;
- ingress goes straight to a shared chain ``ts-ri<hash>`` named after its content (replies, DHCP
  answers, the security-group rules, DROP): ports with the same rules share one chain;
- egress goes to the port's own chain ``ts-o<port>``, which lets through DHCP requests and sends
  packets from the port's own (address, MAC) pairs on to a shared policy chain ``ts-ro<hash>``
  (with ``-g``, so its verdict ends the egress); everything else is spoofed and dropped.
Every chain answers RETURN (allowed) or DROP, and FORWARD accepts at the end, so a packet between two
ports on one bridge passes the sender's egress and then the receiver's ingress. A rule change on many
ports thus writes one new shared chain and rewrites the jumps or egress chains that point at it.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tinystack.network.dataplane import iptables, names, nftables
from tinystack.network.dataplane.iptables import Chains, Tables

Doc = dict[str, Any]

PREFIX = "ts-"
NFT_TABLE = "tinystack_antispoof"
ZONE_CHAIN = f"{PREFIX}zone"
DISPATCH = [f"{PREFIX}d{digit}" for digit in "0123456789abcdef"]
_PROTO_NUM = {"tcp": "6", "udp": "17", "icmp": "1", "icmpv6": "58", "ipv6-icmp": "58", "sctp": "132"}


def instance_port(port: Doc) -> bool:
    """A port the agent wires itself: a guest's (``compute:*``) or a trunk's subport (a VLAN of a guest's)."""
    owner = str(port.get("device_owner", ""))
    return owner.startswith("compute:") or owner == "trunk:subport"


def filtered(port: Doc) -> bool:
    """Instance ports with port security get a firewall; network:* ports (DHCP, router) are trusted."""
    return instance_port(port) and port.get("port_security_enabled", True) is not False


def ct_zone(network_id: str) -> int:
    # A stable zone per network so that equal 5-tuples of two projects with one CIDR never share a conntrack entry.
    return int(hashlib.sha1(network_id.encode()).hexdigest()[:8], 16) % 65000 + 1


def dispatch_chain(port_id: str) -> str:
    return DISPATCH[int(hashlib.sha1(port_id.encode()).hexdigest()[0], 16)]


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


def _rule_specs(port: Doc, direction: str, version: int) -> list[str]:
    specs: dict[str, None] = {}  # ordered and free of duplicates; a group of N members gives each port N rules
    ethertype = f"IPv{version}"
    for rule in port.get("security_group_rules") or ():
        if rule.get("direction") == direction and rule.get("ethertype", "IPv4") == ethertype:
            spec = _rule_spec(direction, version, rule.get("protocol"), rule.get("port_range_min"),
                              rule.get("port_range_max"), rule.get("remote_ip_prefix"))
            if spec is not None:
                specs[spec] = None
    return list(specs)


@functools.lru_cache(maxsize=65536)
def _rule_spec(direction: str, version: int, protocol: Any, low: Any, high: Any, remote: str | None) -> str | None:
    """One rule as an iptables match ending in RETURN; None when it cannot apply to this IP version.
    Cached: the members of a group carry the same rules, so a port's rules are mostly rendered already."""
    if remote and _version(remote) != version:
        return None
    match = _proto_match({"protocol": protocol, "port_range_min": low, "port_range_max": high}, version)
    if remote and remote not in ("0.0.0.0/0", "::/0"):
        match = [("-s" if direction == "ingress" else "-d"), remote, *match]
    return " ".join([*match, "-j", "RETURN"])


def _shared(kind: str, body: list[str], chains: Chains) -> str:
    """Add the shared chain holding ``body`` to ``chains`` (named after its content) and return its name."""
    name = f"{PREFIX}r{kind}" + hashlib.sha1("\n".join(body).encode()).hexdigest()[:12]
    chains[name] = tuple(body)
    return name


@dataclass(frozen=True)
class PortChains:
    """One filtered port's part of an iptables (or ip6tables) ruleset."""

    dispatch: str  # the dispatch chain holding its jumps
    jumps: tuple[str, ...]
    chains: Chains  # its own egress chain and the shared chains it reaches


def port_chains(port: Doc, version: int) -> PortChains:
    tap = names.tap(port["id"])
    egress = f"{PREFIX}o{port['id'][:11]}"
    dhcp_c, dhcp_s = ("68", "67") if version == 4 else ("546", "547")
    chains: Chains = {}
    # Ingress holds nothing of the port itself: replies first, then DHCP answers, then the group's rules.
    ingress = [
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-m conntrack --ctstate INVALID -j DROP",
        f"-p udp --sport {dhcp_s} --dport {dhcp_c} -j RETURN",
    ]
    if version == 6:
        # Router advertisements and neighbour discovery keep IPv6 alive (types 130-136 except redirect).
        ingress += [f"-p ipv6-icmp --icmpv6-type {t} -j RETURN" for t in (130, 131, 132, 134, 135, 136)]
    ingress_chain = _shared("i", [*ingress, *_rule_specs(port, "ingress", version), "-j DROP"], chains)
    # Egress, after anti-spoofing: a guest never answers DHCP for others; replies; the group's rules.
    policy = [
        f"-p udp --sport {dhcp_s} --dport {dhcp_c} -j DROP",
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-m conntrack --ctstate INVALID -j DROP",
        *_rule_specs(port, "egress", version),
        "-j DROP",
    ]
    policy_chain = _shared("o", policy, chains)
    # The port's own chain: a DHCP request may come from the unspecified address; anything else must come
    # from one of its (address, MAC) pairs, and goes on to the policy (a goto: its RETURN ends the egress).
    if version == 4:
        own = ["-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp --sport 68 --dport 67 -j RETURN"]
    else:
        own = [f"-s ::/128 -p ipv6-icmp --icmpv6-type {t} -j RETURN" for t in (131, 135, 143)]
        own += [f"-p ipv6-icmp --icmpv6-type {t} -j RETURN" for t in (130, 131, 132, 133, 135, 136, 143)]
    sources = _own_ips(port, version)
    if version == 6:
        mac = port["mac_address"]
        sources.append((str(_link_local(mac)), mac))
    own += [f"-s {ip} -m mac --mac-source {mac} -g {policy_chain}" for ip, mac in sources]
    own.append("-j DROP")
    chains[egress] = tuple(own)
    jumps = (f"-m physdev --physdev-out {tap} --physdev-is-bridged -j {ingress_chain}",
             f"-m physdev --physdev-in {tap} --physdev-is-bridged -j {egress}")
    return PortChains(dispatch_chain(port["id"]), jumps, chains)


def _link_local(mac: str) -> ipaddress.IPv6Address:
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    return ipaddress.IPv6Address(bytes([0xFE, 0x80, 0, 0, 0, 0, 0, 0, *eui]))


def tables(ports: Iterable[tuple[str, PortChains]], networks: Iterable[str]) -> Tables:
    """The raw+filter tables of the node namespace for ``(port id, chains)`` pairs of one IP version."""
    zones = tuple(f"-i {names.bridge(n)} -j CT --zone {ct_zone(n)}" for n in sorted(set(networks)))
    raw: Chains = {"PREROUTING": (f"-j {ZONE_CHAIN}",), "OUTPUT": (), ZONE_CHAIN: zones}
    jumps: dict[str, list[str]] = {chain: [] for chain in DISPATCH}
    filt: Chains = {"INPUT": (), "FORWARD": tuple(f"-j {chain}" for chain in DISPATCH), "OUTPUT": ()}
    for _, port in sorted(ports, key=lambda item: item[0]):
        jumps[port.dispatch] += port.jumps
        filt.update(port.chains)
    filt.update({chain: tuple(rules) for chain, rules in jumps.items()})
    return {"raw": raw, "filter": filt}


def antispoof_chain(port: Doc) -> tuple[str, ...]:
    """The nft rules pinning a filtered port's source MAC and ARP sender address."""
    pairs = _own_ips(port, 4)
    macs = sorted({port["mac_address"], *(m for _, m in pairs)})
    rules = [f"ether saddr != {{ {', '.join(macs)} }} drop"]
    if pairs:
        ips = ", ".join(sorted({ip for ip, _ in pairs}))
        rules.append(f"arp saddr ip != {{ {ips} }} arp saddr ip != 0.0.0.0 drop")
    else:
        rules.append("ether type arp drop")
    return tuple(rules)


def antispoof(ports: Iterable[tuple[str, tuple[str, ...]]]) -> nftables.Table:
    """The anti-spoofing table for ``(port id, antispoof_chain)`` pairs."""
    table = nftables.Table()
    for port_id, rules in ports:
        chain = f"p{port_id[:11]}"
        table.chains[chain] = rules
        table.jumps[names.tap(port_id)] = chain
    return table


def render_iptables(ports: Iterable[Doc], networks: Iterable[str], version: int = 4) -> str:
    """The whole raw+filter ruleset of the node namespace for ``iptables-restore`` (or ip6tables-restore)."""
    chosen = [(p["id"], port_chains(p, version)) for p in ports if filtered(p)]
    return iptables.restore_document(tables(chosen, networks))


def render_nft(ports: Iterable[Doc]) -> str:
    """An ``nft -f`` transaction replacing the bridge table that pins each filtered port's MAC and ARP sender."""
    return nftables.replace_document(NFT_TABLE, antispoof((p["id"], antispoof_chain(p)) for p in ports if filtered(p)))
