"""IP address management: CIDR and pool checks, default gateways and pools, SLAAC (EUI-64) addresses and
picking free addresses. Uniqueness is the database's job (the ``(subnet_id, ip_address)`` primary key);
this module only proposes candidates, and the service retries the transaction when another one won."""

from __future__ import annotations

import ipaddress
import itertools
import random
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.network.common import bad
from tinystack.network.models import IPAllocation, Subnet

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
# Addresses of one subnet are always of one version; comparisons between them are typed loosely.
SLAAC_MODES = ("slaac", "dhcpv6-stateless")
# The first try takes the first free address (predictable, as users expect); a retry after losing a race
# draws at random from the first few free ones, so concurrent requests stop colliding.
WINDOW = 8
attempt = threading.local()


def parse_cidr(cidr: Any, ip_version: int | None = None) -> IPNet:
    if not isinstance(cidr, str):
        raise bad(f"Invalid input for cidr. Reason: '{cidr}' is not a valid IP subnet.")
    try:
        iface = ipaddress.ip_interface(cidr)
    except ValueError:
        raise bad(f"Invalid input for cidr. Reason: '{cidr}' is not a valid IP subnet.") from None
    net = iface.network
    if "/" not in cidr:
        raise bad(f"Invalid input for cidr. Reason: '{cidr}' is not a valid IP subnet.")
    # Host bits are accepted and dropped (10.99.99.0/16 is stored as 10.99.0.0/16), as Neutron does.
    if ip_version is not None and net.version != ip_version:
        raise bad("Cidr and ip_version are inconsistent.", "InvalidInput")
    if (net.version == 4 and net.prefixlen > 30) or (net.version == 6 and net.prefixlen > 126):
        raise bad(f"Invalid input for operation: {cidr} is too small a subnet (no usable addresses).", "InvalidInput")
    return net


def parse_ip(value: Any, what: str = "ip_address") -> Any:
    try:
        return ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise bad(f"Invalid input for {what}. Reason: '{value}' is not a valid IP address.") from None


def first_host(net: IPNet) -> Any:
    return net.network_address + 1


def last_host(net: IPNet) -> Any:
    return net.broadcast_address - 1 if net.version == 4 else net.broadcast_address


def check_gateway(net: IPNet, gateway: Any) -> str | None:
    if gateway is None:
        return None
    ip = parse_ip(gateway, "gateway_ip")
    if ip not in net or ip == net.network_address or (net.version == 4 and ip == net.broadcast_address):
        raise bad(f"Invalid input for operation: Gateway is not valid on subnet {net}.", "InvalidInput")
    return str(ip)


def default_pools(net: IPNet, gateway: str | None) -> list[dict[str, str]]:
    """Every host address except the gateway (and, for IPv4, the network and broadcast addresses)."""
    start, end = first_host(net), last_host(net)
    gw: Any = ipaddress.ip_address(gateway) if gateway else None
    if gw is None or not start <= gw <= end:
        return [{"start": str(start), "end": str(end)}]
    pools = []
    if gw > start:
        pools.append({"start": str(start), "end": str(gw - 1)})
    if gw < end:
        pools.append({"start": str(gw + 1), "end": str(end)})
    return pools


def check_pools(net: IPNet, pools: Any, gateway: str | None) -> list[dict[str, str]]:
    if not isinstance(pools, list):
        raise bad("Invalid input for allocation_pools. Reason: Invalid data format for IP pool.")
    ranges: list[tuple[Any, Any]] = []
    for pool in pools:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise bad(f"Invalid input for allocation_pools. Reason: Invalid data format for IP pool: '{pool}'.")
        start, end = parse_ip(pool["start"], "allocation_pools"), parse_ip(pool["end"], "allocation_pools")
        if start.version != net.version or end.version != net.version or start > end:
            raise bad(f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.", "InvalidAllocationPool")
        if start not in net or end not in net or start == net.network_address or (
                net.version == 4 and end == net.broadcast_address):
            raise bad(f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.",
                      "OutOfBoundsAllocationPool")
        ranges.append((start, end))
    ranges.sort()
    for (_, a_end), (b_start, b_end) in itertools.pairwise(ranges):
        if b_start <= a_end:
            raise bad(f"Found overlapping allocation pools: {b_start}-{b_end} and an earlier pool.",
                      "OverlappingAllocationPools")
    if gateway is not None:
        gw2: Any = ipaddress.ip_address(gateway)
        for start, end in ranges:
            if start <= gw2 <= end:
                raise bad(f"Gateway ip {gateway} conflicts with allocation pool {start}-{end}.",
                          "GatewayConflictWithAllocationPools")
    return [{"start": str(a), "end": str(b)} for a, b in ranges]


def pool_size(pools: list[dict[str, str]]) -> int:
    return sum(int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1 for p in pools)


def in_pools(ip: Any, pools: list[dict[str, str]]) -> bool:
    return any(_addr(p["start"]) <= ip <= _addr(p["end"]) for p in pools)


def _addr(text: str) -> Any:
    return ipaddress.ip_address(text)


def eui64(cidr: str, mac: str) -> str:
    """The SLAAC address of ``mac`` in the /64 ``cidr`` (modified EUI-64: U/L bit flipped, ff:fe inserted)."""
    net = ipaddress.IPv6Network(cidr)
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]])
    return str(ipaddress.IPv6Address(int(net.network_address) | int.from_bytes(iid, "big")))


def is_slaac(subnet: Subnet) -> bool:
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in SLAAC_MODES


def _free(pools: list[dict[str, str]], used: set[str]) -> Iterator[str]:
    for pool in pools:
        ip, end = _addr(pool["start"]), _addr(pool["end"])
        while ip <= end:
            text = str(ip)
            if text not in used:
                yield text
            ip += 1


def used_addresses(s: Session, subnet_id: str) -> set[str]:
    return set(s.scalars(select(IPAllocation.ip_address).where(IPAllocation.subnet_id == subnet_id)))


def candidate(s: Session, subnet: Subnet) -> str | None:
    """A free address of the subnet's pools, or None when they are exhausted."""
    used = used_addresses(s, subnet.id)
    size = WINDOW if getattr(attempt, "n", 0) else 1
    window = []
    for ip in _free(subnet.allocation_pools, used):
        window.append(ip)
        if len(window) >= size:
            break
    return random.choice(window) if window else None


def overlaps(a: str, b: str) -> bool:
    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))
