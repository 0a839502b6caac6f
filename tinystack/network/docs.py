"""The desired-state documents of docs/contracts.md (types network, dhcp, port, router), computed from the
database in bulk, each with the hosts it must reach. Security-group rules that name a remote group are
expanded here into one rule per member address, so the agent needs no membership logic."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tinystack.network import trunks
from tinystack.network.models import (
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Router,
    SecurityGroupRule,
    Subnet,
)

METADATA_IP = "169.254.169.254"
CHUNK = 500


@dataclass(frozen=True)
class Doc:
    type: str
    id: str
    hosts: frozenset[str]
    spec: dict[str, Any]


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    items = list(ids)
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def _subnet_spec(sn: Subnet) -> dict[str, Any]:
    return {"id": sn.id, "cidr": sn.cidr, "ip_version": sn.ip_version, "gateway_ip": sn.gateway_ip,
            "enable_dhcp": sn.enable_dhcp, "dns_nameservers": list(sn.dns_nameservers or []),
            "host_routes": list(sn.host_routes or []), "allocation_pools": list(sn.allocation_pools or [])}


def _ips(s: Session, port_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for chunk in _chunks(port_ids):
        for a in s.scalars(select(IPAllocation).where(IPAllocation.port_id.in_(chunk))):
            out.setdefault(a.port_id, []).append({"subnet_id": a.subnet_id, "ip_address": a.ip_address})
    for ips in out.values():
        ips.sort(key=lambda f: (f["subnet_id"], f["ip_address"]))
    return out


def migrating_to(profile: dict[str, Any] | None) -> str | None:
    """The destination of a live migration under way (Nova sets ``binding:profile`` ``migrating_to``): the
    port is wired there too, so the guest finds its tap when it arrives."""
    host = (profile or {}).get("migrating_to")
    return host if isinstance(host, str) and host else None


def is_instance_port(port: Port) -> bool:
    """Ports the agent wires as 'port' documents; network:* ports are wired by their dhcp/router docs."""
    return not port.device_owner.startswith("network:")


def network_docs(s: Session, ids: Iterable[str], network_host: str | None) -> dict[str, Doc | None]:
    out: dict[str, Doc | None] = {}
    for chunk in _chunks(ids):
        nets = {n.id: n for n in s.scalars(select(Network).where(Network.id.in_(chunk)))}
        subnets: dict[str, list[Subnet]] = {}
        for sn in s.scalars(select(Subnet).where(Subnet.network_id.in_(chunk)).order_by(Subnet.created_at, Subnet.id)):
            subnets.setdefault(sn.network_id, []).append(sn)
        hosts: dict[str, set[str]] = {}
        for net_id, host, owner, profile in s.execute(
                select(Port.network_id, Port.host_id, Port.device_owner, Port.binding_profile)
                .where(Port.network_id.in_(chunk), Port.host_id != "")):
            if not owner.startswith("network:"):
                hosts.setdefault(net_id, set()).update(h for h in (host, migrating_to(profile)) if h)
        for net_id in chunk:
            net = nets.get(net_id)
            if net is None:
                out[net_id] = None
                continue
            subs = subnets.get(net_id, [])
            ext_gw = next((sn.gateway_ip for sn in subs if sn.ip_version == 4), None) if net.external else None
            spec = {"id": net.id, "project_id": net.project_id, "network_type": net.network_type,
                    "segmentation_id": net.segmentation_id, "physical_network": net.physical_network, "mtu": net.mtu,
                    "router_external": net.external, "subnets": [_subnet_spec(sn) for sn in subs],
                    "external_gateway_ip": ext_gw}
            targets = set(hosts.get(net_id, set()))
            if network_host:
                targets.add(network_host)
            out[net_id] = Doc("network", net_id, frozenset(targets), spec)
    return out


def dhcp_docs(s: Session, ids: Iterable[str], network_host: str | None, dns_domain: str,
              metadata_socket: str) -> dict[str, Doc | None]:
    out: dict[str, Doc | None] = {}
    for chunk in _chunks(ids):
        ports = list(s.scalars(select(Port).where(Port.network_id.in_(chunk))))
        ips = _ips(s, [p.id for p in ports])
        # A network's own dns_domain (stored with its trailing dot) names its hosts; else the cloud's.
        zones = {i: d.rstrip(".") for i, d in s.execute(select(Network.id, Network.dns_domain)
                                                          .where(Network.id.in_(chunk))) if d}
        subnets: dict[str, list[Subnet]] = {}
        for sn in s.scalars(select(Subnet).where(Subnet.network_id.in_(chunk), Subnet.enable_dhcp.is_(True))
                            .order_by(Subnet.created_at, Subnet.id)):
            subnets.setdefault(sn.network_id, []).append(sn)
        by_net: dict[str, list[Port]] = {}
        for p in ports:
            by_net.setdefault(p.network_id, []).append(p)
        for net_id in chunk:
            members = by_net.get(net_id, [])
            dhcp = next((p for p in members if p.device_owner == "network:dhcp"), None)
            if dhcp is None or not subnets.get(net_id):
                out[net_id] = None
                continue
            hosts = []
            for p in sorted(members, key=lambda p: p.id):
                if p.id == dhcp.id:
                    continue
                for f in ips.get(p.id, []):
                    name = p.dns_name or "host-" + f["ip_address"].replace(".", "-").replace(":", "-")
                    host: dict[str, Any] = {"mac": p.mac_address, "ip": f["ip_address"], "hostname": name}
                    if p.extra_dhcp_opts:
                        host.update({"port_id": p.id, "opts": p.extra_dhcp_opts})
                    hosts.append(host)
            spec = {"network_id": net_id,
                    "port": {"id": dhcp.id, "mac_address": dhcp.mac_address, "fixed_ips": ips.get(dhcp.id, [])},
                    "hosts": hosts, "subnets": [_subnet_spec(sn) for sn in subnets[net_id]],
                    "dns_domain": zones.get(net_id, dns_domain),
                    "metadata": {"ip": METADATA_IP, "network_id": net_id, "upstream": metadata_socket}}
            out[net_id] = Doc("dhcp", net_id, frozenset([network_host] if network_host else []), spec)
    return out


def _member_ips(s: Session, groups: set[str]) -> dict[str, list[str]]:
    """Every address (fixed IPs and allowed address pairs) of the ports in each group."""
    out: dict[str, list[str]] = {}
    for chunk in _chunks(groups):
        rows = s.execute(select(PortSecurityGroup.security_group_id, IPAllocation.ip_address)
                         .join(IPAllocation, IPAllocation.port_id == PortSecurityGroup.port_id)
                         .where(PortSecurityGroup.security_group_id.in_(chunk))).all()
        for sg, ip in rows:
            out.setdefault(sg, []).append(ip)
        pairs = s.execute(select(PortSecurityGroup.security_group_id, Port.allowed_address_pairs)
                          .join(Port, Port.id == PortSecurityGroup.port_id)
                          .where(PortSecurityGroup.security_group_id.in_(chunk))).all()
        for sg, port_pairs in pairs:
            out.setdefault(sg, []).extend(p["ip_address"] for p in port_pairs or [])
    return {sg: sorted(set(ips)) for sg, ips in out.items()}


def _rule_specs(rule: SecurityGroupRule, members: dict[str, list[str]]) -> list[dict[str, Any]]:
    base = {"direction": rule.direction, "ethertype": rule.ethertype, "protocol": rule.protocol,
            "port_range_min": rule.port_range_min, "port_range_max": rule.port_range_max}
    if rule.remote_group_id is None:
        return [{**base, "remote_ip_prefix": rule.remote_ip_prefix}]
    version = 4 if rule.ethertype == "IPv4" else 6
    out = []
    for ip in members.get(rule.remote_group_id, []):
        net = ipaddress.ip_network(ip, strict=False)
        if net.version == version:
            out.append({**base, "remote_ip_prefix": str(net)})
    return out


def port_docs(s: Session, ids: Iterable[str]) -> dict[str, Doc | None]:
    out: dict[str, Doc | None] = {}
    for chunk in _chunks(ids):
        ports = {p.id: p for p in s.scalars(select(Port).where(Port.id.in_(chunk)))}
        ips = _ips(s, ports)
        groups: dict[str, list[str]] = {}
        for port_id, sg in s.execute(select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
                                     .where(PortSecurityGroup.port_id.in_(chunk))):
            groups.setdefault(port_id, []).append(sg)
        all_groups = {sg for gs in groups.values() for sg in gs}
        rules: dict[str, list[SecurityGroupRule]] = {}
        for r in s.scalars(select(SecurityGroupRule).where(SecurityGroupRule.security_group_id.in_(all_groups))
                           .order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)):
            rules.setdefault(r.security_group_id, []).append(r)
        remotes = {r.remote_group_id for rs in rules.values() for r in rs if r.remote_group_id}
        members = _member_ips(s, remotes) if remotes else {}
        expanded = {sg: [spec for r in rs for spec in _rule_specs(r, members)] for sg, rs in rules.items()}
        vlans = trunks.vlans(s, list(ports))
        for port_id in chunk:
            port = ports.get(port_id)
            if port is None or not is_instance_port(port) or not port.host_id:
                out[port_id] = None
                continue
            sg_rules: list[dict[str, Any]] = []
            if port.port_security_enabled:
                for sg in sorted(groups.get(port_id, [])):
                    for spec in expanded.get(sg, []):
                        if spec not in sg_rules:
                            sg_rules.append(spec)
            spec = {"id": port.id, "network_id": port.network_id, "mac_address": port.mac_address,
                    "fixed_ips": ips.get(port.id, []), "device_owner": port.device_owner,
                    "device_id": port.device_id, "port_security_enabled": port.port_security_enabled,
                    "allowed_address_pairs": list(port.allowed_address_pairs or []),
                    "security_group_rules": sg_rules}
            if port.id in vlans:
                # A trunk's subport: a VLAN of its parent's device, on this port's network (docs/contracts.md).
                spec["vlan"] = vlans[port.id]
            hosts = {port.host_id}
            if (dest := migrating_to(port.binding_profile)) is not None:
                spec["migrating_to"] = dest
                hosts.add(dest)
            out[port_id] = Doc("port", port_id, frozenset(hosts), spec)
    return out


def router_docs(s: Session, ids: Iterable[str], network_host: str | None) -> dict[str, Doc | None]:
    out: dict[str, Doc | None] = {}
    for router_id in ids:
        router = s.get(Router, router_id)
        if router is None:
            out[router_id] = None
            continue
        ports = list(s.scalars(select(Port).where(Port.device_id == router.id,
                                                  Port.device_owner.in_(("network:router_interface",
                                                                         "network:router_gateway")))))
        ips = _ips(s, [p.id for p in ports])
        subnet_ids = {f["subnet_id"] for fs in ips.values() for f in fs}
        subnets = {sn.id: sn for sn in s.scalars(select(Subnet).where(Subnet.id.in_(subnet_ids)))}
        gateway = None
        interfaces = []
        for p in sorted(ports, key=lambda p: p.id):
            for f in ips.get(p.id, []):
                sn = subnets.get(f["subnet_id"])
                if sn is None:
                    continue
                if p.id == router.gw_port_id:
                    if gateway is None and sn.ip_version == 4:
                        gateway = {"port_id": p.id, "network_id": p.network_id, "mac_address": p.mac_address,
                                   "ip": f["ip_address"], "cidr": sn.cidr, "gateway_ip": sn.gateway_ip,
                                   "enable_snat": router.enable_snat}
                elif p.device_owner == "network:router_interface":
                    interfaces.append({"port_id": p.id, "mac_address": p.mac_address, "ip": f["ip_address"],
                                       "cidr": sn.cidr, "subnet_id": sn.id})
        fips = [{"id": f.id, "floating_ip": f.floating_ip_address, "fixed_ip": f.fixed_ip_address}
                for f in s.scalars(select(FloatingIP).where(FloatingIP.router_id == router.id,
                                                            FloatingIP.port_id.is_not(None)).order_by(FloatingIP.id))]
        spec = {"id": router.id, "project_id": router.project_id, "admin_state_up": router.admin_state_up,
                "gateway": gateway, "interfaces": interfaces, "routes": list(router.routes or []),
                "floating_ips": fips}
        out[router_id] = Doc("router", router_id, frozenset([network_host] if network_host else []), spec)
    return out


def ids_on_host(s: Session, host: str, network_host: str | None) -> dict[str, list[str]]:
    """Every resource id whose document may go to ``host`` (resync answers)."""
    ports = [p for p in s.scalars(select(Port).where(Port.host_id == host)) if is_instance_port(p)]
    # Ports of guests live-migrating to ``host`` are wired there too (rare: a scan at agent start is cheap).
    ports += [p for p in s.scalars(select(Port).where(Port.host_id != host, Port.host_id != "",
                                                      or_(Port.device_owner.like("compute:%"),
                                                          Port.device_owner == trunks.SUBPORT_OWNER)))
              if migrating_to(p.binding_profile) == host]
    nets = {p.network_id for p in ports}
    out = {"port": sorted(p.id for p in ports), "network": [], "dhcp": [], "router": []}
    if host == network_host:
        nets |= set(s.scalars(select(Network.id)))
        out["dhcp"] = sorted(set(s.scalars(select(Port.network_id).where(Port.device_owner == "network:dhcp"))))
        out["router"] = sorted(s.scalars(select(Router.id)))
    out["network"] = sorted(nets)
    return out
