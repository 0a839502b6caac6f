"""Giving ports their addresses and MACs: explicit or automatic fixed IPs (SLAAC subnets by EUI-64),
checked for conflicts, written under the database's unique keys; and the DHCP port each network with a
DHCP-enabled subnet gets automatically, as Neutron creates it."""

from __future__ import annotations

import ipaddress
import random
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.network import ipam
from tinystack.network.common import bad, conflict, new_uuid, not_found
from tinystack.network.models import IPAllocation, Network, Port, Subnet

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def free_mac(s: Session, network_id: str) -> str:
    """A MAC not yet used on the network (the unique key settles any race: the transaction is retried)."""
    for _ in range(16):
        mac = random_mac()
        if s.scalar(select(Port.id).where(Port.network_id == network_id, Port.mac_address == mac)) is None:
            return mac
    raise conflict(f"Unable to generate unique mac on network {network_id}.", "MacAddressGenerationFailure")


def check_mac(s: Session, network_id: str, mac: Any, port_id: str | None = None) -> str:
    text = str(mac).lower() if isinstance(mac, str) else ""
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts) \
            or int(parts[0], 16) & 1 or text == "00:00:00:00:00:00":
        raise bad(f"Invalid input for mac_address. Reason: '{mac}' is not a valid MAC address.")
    other = s.scalar(select(Port.id).where(Port.network_id == network_id, Port.mac_address == text))
    if other is not None and other != port_id:
        raise conflict(f"Unable to complete operation for network {network_id}. The mac address {text} is in use.",
                       "MacAddressInUse")
    return text


def _subnets(s: Session, network_id: str) -> list[Subnet]:
    return list(s.scalars(select(Subnet).where(Subnet.network_id == network_id).order_by(Subnet.created_at,
                                                                                          Subnet.id)))


def _exhausted(network_id: str) -> Exception:
    return conflict(f"No more IP addresses available on network {network_id}.", "IpAddressGenerationFailure")


def plan(s: Session, network_id: str, mac: str, request: Any, device_owner: str = "",
         keep: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The (subnet_id, ip) pairs a port gets. ``request`` None means automatic; otherwise a fixed_ips list.
    ``keep``: addresses the port already holds (updates), which are not 'in use' for itself."""
    subnets = _subnets(s, network_id)
    by_id = {sn.id: sn for sn in subnets}
    keep = keep or {}
    out: list[tuple[str, str]] = []
    if request is None:
        # Neutron's default: one address from an IPv4 subnet, one from a stateful IPv6 subnet, and the
        # EUI-64 address on every SLAAC subnet.
        v4 = [sn for sn in subnets if sn.ip_version == 4]
        v6 = [sn for sn in subnets if sn.ip_version == 6 and not ipam.is_slaac(sn)]
        for group in (v4, v6):
            if not group:
                continue
            for sn in group:
                ip = ipam.candidate(s, sn)
                if ip is not None:
                    out.append((sn.id, ip))
                    break
            else:
                raise _exhausted(network_id)
        out += [(sn.id, ipam.eui64(sn.cidr, mac)) for sn in subnets if ipam.is_slaac(sn)
                and not device_owner.startswith("network:router_interface")]
        return out
    if not isinstance(request, list):
        raise bad("Invalid input for fixed_ips. Reason: Invalid data format for fixed IP.")
    for item in request:
        if not isinstance(item, dict) or not set(item) <= {"subnet_id", "ip_address"} or not item:
            raise bad(f"Invalid input for fixed_ips. Reason: Invalid data format for fixed IP: '{item}'.")
        subnet_id, ip_text = item.get("subnet_id"), item.get("ip_address")
        if subnet_id is not None and subnet_id not in by_id:
            if s.get(Subnet, subnet_id) is None:
                raise not_found("subnet", str(subnet_id))
            raise bad(f"Invalid input for operation: Failed to create port on network {network_id}, because "
                      "fixed_ips included invalid subnet {subnet_id}.", "InvalidInput")
        if ip_text is None:
            sn = by_id[str(subnet_id)]
            if ipam.is_slaac(sn):
                out.append((sn.id, ipam.eui64(sn.cidr, mac)))
                continue
            ip = ipam.candidate(s, sn)
            if ip is None:
                raise _exhausted(network_id)
            out.append((sn.id, ip))
            continue
        ip_obj = ipam.parse_ip(ip_text)
        matches = [sn for sn in subnets if ip_obj in ipaddress.ip_network(sn.cidr)
                   and (subnet_id is None or sn.id == subnet_id)]
        if not matches:
            if subnet_id is not None:
                raise bad(f"IP address {ip_text} is not a valid IP for the specified subnet.", "InvalidIpForSubnet")
            raise bad(f"IP address {ip_text} is not a valid IP for any of the subnets on the specified network.",
                      "InvalidIpForNetwork")
        sn = matches[0]
        net = ipaddress.ip_network(sn.cidr)
        ip = str(ip_obj)
        if ip_obj == net.network_address or (net.version == 4 and ip_obj == net.broadcast_address):
            raise bad(f"IP address {ip} is not a valid IP for the specified subnet.", "InvalidIpForSubnet")
        if keep.get(sn.id + "/" + ip) is None:
            used = s.scalar(select(IPAllocation.port_id).where(IPAllocation.subnet_id == sn.id,
                                                              IPAllocation.ip_address == ip))
            if used is not None:
                raise conflict(f"IP address {ip} already allocated in subnet {sn.id}", "IpAddressAlreadyAllocated")
        out.append((sn.id, ip))
    seen = set()
    for pair in out:
        if pair in seen:
            raise bad(f"Duplicate IP address '{pair[1]}'", "InvalidInput")
        seen.add(pair)
    return out


def write(s: Session, port: Port, pairs: list[tuple[str, str]]) -> None:
    """Make ``pairs`` the port's addresses; a concurrent holder makes the flush fail and the caller retry."""
    current = {(a.subnet_id, a.ip_address) for a in
               s.scalars(select(IPAllocation).where(IPAllocation.port_id == port.id))}
    wanted = set(pairs)
    for subnet_id, ip in current - wanted:
        s.execute(delete(IPAllocation).where(IPAllocation.subnet_id == subnet_id, IPAllocation.ip_address == ip))
    for subnet_id, ip in pairs:
        if (subnet_id, ip) not in current:
            s.add(IPAllocation(subnet_id=subnet_id, ip_address=ip, port_id=port.id, network_id=port.network_id))
    s.flush()


def dhcp_device_id(network_id: str) -> str:
    return f"dhcp-{network_id}"


def sync_dhcp_port(svc: NetworkService, s: Session, network_id: str, changes: Changes) -> None:
    """The network's DHCP port exists exactly when a subnet has DHCP on, with one address on each such subnet."""
    net = s.get(Network, network_id)
    port = s.scalar(select(Port).where(Port.network_id == network_id, Port.device_owner == "network:dhcp").limit(1))
    subnets = [sn for sn in _subnets(s, network_id) if sn.enable_dhcp] if net is not None else []
    if not subnets:
        if port is not None:
            s.delete(port)
            s.flush()
            changes.add(("port", port.id))
            changes.add(("network", network_id))
        return
    assert net is not None
    if port is None:
        port = Port(id=new_uuid(), project_id=net.project_id, network_id=network_id, name="",
                    mac_address=free_mac(s, network_id), device_owner="network:dhcp",
                    device_id=dhcp_device_id(network_id), port_security_enabled=False,
                    host_id=svc.network_host() or "")
        s.add(port)
        s.flush()
    held = {a.subnet_id: a.ip_address for a in
            s.scalars(select(IPAllocation).where(IPAllocation.port_id == port.id))}
    pairs = []
    for sn in subnets:
        if sn.id in held:
            pairs.append((sn.id, held[sn.id]))
            continue
        ip = ipam.eui64(sn.cidr, port.mac_address) if ipam.is_slaac(sn) else ipam.candidate(s, sn)
        if ip is None:
            raise _exhausted(network_id)
        pairs.append((sn.id, ip))
    write(s, port, pairs)
    changes.add(("port", port.id))
    changes.add(("network", network_id))
