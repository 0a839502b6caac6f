"""Rows → Neutron JSON. Each renderer loads what it needs for a whole list in a few queries, and hides
admin-only attributes (provider, binding) from callers the policy does not allow to see them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network import dns, trunks
from tinystack.network.common import iso, standard, tags_for
from tinystack.network.models import (
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    SubnetPool,
)

if TYPE_CHECKING:
    from tinystack.network.service import NetworkService

AZ = "nova"


def _in(column: Any, ids: list[str]) -> Any:
    return column.in_(ids)


def _project(row: Any) -> dict[str, Any]:
    return {"project_id": row.project_id, "tenant_id": row.project_id}


def address_scopes(s: Session, network_ids: list[str]) -> dict[tuple[str, int], str]:
    """(network, IP version) → the address scope its subnets of that version are in (the ``address-scope``
    extension's ``ipv4_address_scope``/``ipv6_address_scope``): a scope only when every such subnet comes from
    a pool of that one scope; a subnet outside any scope leaves the network without one."""
    found: dict[tuple[str, int], set[str | None]] = {}
    for i in range(0, len(network_ids), 500):
        rows = s.execute(select(Subnet.network_id, Subnet.ip_version, SubnetPool.address_scope_id)
                         .outerjoin(SubnetPool, SubnetPool.id == Subnet.subnetpool_id)
                         .where(_in(Subnet.network_id, network_ids[i:i + 500])))
        for net_id, version, scope in rows:
            found.setdefault((net_id, version), set()).add(scope)
    return {key: str(next(iter(scopes))) for key, scopes in found.items()
            if len(scopes) == 1 and None not in scopes}


def networks(svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Network]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    subnets: dict[str, list[str]] = {}
    for net_id, sub_id in s.execute(select(Subnet.network_id, Subnet.id).where(_in(Subnet.network_id, ids))):
        subnets.setdefault(net_id, []).append(sub_id)
    scopes = address_scopes(s, ids)
    tags = tags_for(s, ids)
    provider = svc.allowed(ctx, "get_network:provider:network_type", {})
    out = []
    for r in rows:
        item = {"id": r.id, "name": r.name, **_project(r), "admin_state_up": r.admin_state_up, "status": r.status,
                "shared": r.shared, "router:external": r.external, "is_default": r.is_default, "mtu": r.mtu,
                "port_security_enabled": r.port_security_enabled, "subnets": sorted(subnets.get(r.id, [])),
                "availability_zone_hints": r.availability_zone_hints or [], "availability_zones": [AZ],
                "ipv4_address_scope": scopes.get((r.id, 4)), "ipv6_address_scope": scopes.get((r.id, 6)), "l2_adjacency": True,
                "dns_domain": r.dns_domain or "",
                **standard(r, tags)}
        if provider:
            item.update({"provider:network_type": r.network_type, "provider:physical_network": r.physical_network,
                         "provider:segmentation_id": r.segmentation_id})
        out.append(item)
    return out


def subnets(svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Subnet]) -> list[dict[str, Any]]:
    tags = tags_for(s, [r.id for r in rows])
    return [{"id": r.id, "name": r.name, **_project(r), "network_id": r.network_id, "ip_version": r.ip_version,
             "cidr": r.cidr, "gateway_ip": r.gateway_ip, "enable_dhcp": r.enable_dhcp,
             "allocation_pools": r.allocation_pools or [], "dns_nameservers": r.dns_nameservers or [],
             "host_routes": r.host_routes or [], "ipv6_ra_mode": r.ipv6_ra_mode,
             "ipv6_address_mode": r.ipv6_address_mode, "subnetpool_id": r.subnetpool_id,
             "service_types": [], "segment_id": None, **standard(r, tags)} for r in rows]


def subnetpools(svc: NetworkService, s: Session, ctx: RequestContext, rows: list[SubnetPool]) -> list[dict[str, Any]]:
    tags = tags_for(s, [r.id for r in rows])
    return [{"id": r.id, "name": r.name, **_project(r), "ip_version": r.ip_version, "prefixes": r.prefixes,
             "default_prefixlen": r.default_prefixlen, "min_prefixlen": r.min_prefixlen,
             "max_prefixlen": r.max_prefixlen, "shared": r.shared, "is_default": r.is_default,
             "default_quota": r.default_quota, "address_scope_id": r.address_scope_id,
             **standard(r, tags)} for r in rows]


def fixed_ips(s: Session, port_ids: list[str]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for i in range(0, len(port_ids), 500):
        chunk = port_ids[i:i + 500]
        for port_id, subnet_id, ip in s.execute(select(IPAllocation.port_id, IPAllocation.subnet_id,
                                                       IPAllocation.ip_address).where(_in(IPAllocation.port_id, chunk))):
            out.setdefault(port_id, []).append({"subnet_id": subnet_id, "ip_address": ip})
    for ips in out.values():
        ips.sort(key=lambda f: (f["subnet_id"], f["ip_address"]))
    return out


def port_groups(s: Session, port_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in range(0, len(port_ids), 500):
        chunk = port_ids[i:i + 500]
        for port_id, sg in s.execute(select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
                                     .where(_in(PortSecurityGroup.port_id, chunk))):
            out.setdefault(port_id, []).append(sg)
    return out


def vif(port: Port) -> tuple[str, dict[str, Any]]:
    if not port.host_id:
        return "unbound", {}
    # Contract: QEMU opens the tap the network agent made on the network's bridge (docs/contracts.md).
    return "tap", {"port_filter": True, "connectivity": "l2", "tap_name": f"tap{port.id[:11]}",
                   "bridge_name": f"brq{port.network_id[:11]}"}


def ports(svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Port]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    ips, groups, tags = fixed_ips(s, ids), port_groups(s, ids), tags_for(s, ids)
    binding = svc.allowed(ctx, "get_port:binding:host_id", {})
    net_ids = sorted({r.network_id for r in rows})
    zones = {i: d for i, d in s.execute(select(Network.id, Network.dns_domain).where(_in(Network.id, net_ids)))}
    trunk_details = trunks.details(s, ids)
    out = []
    for r in rows:
        item = {"id": r.id, "name": r.name, **_project(r), "network_id": r.network_id, "mac_address": r.mac_address,
                "admin_state_up": r.admin_state_up, "status": r.status, "device_owner": r.device_owner,
                "device_id": r.device_id, "fixed_ips": ips.get(r.id, []),
                "security_groups": sorted(groups.get(r.id, [])), "port_security_enabled": r.port_security_enabled,
                "allowed_address_pairs": r.allowed_address_pairs or [], "binding:vnic_type": r.vnic_type,
                "dns_name": r.dns_name, "extra_dhcp_opts": r.extra_dhcp_opts or [],
                "propagate_uplink_status": False,
                "dns_assignment": dns.assignment(r.dns_name, ips.get(r.id, []),
                                                 dns.domain(zones.get(r.network_id), svc.settings.dns_domain)),
                **standard(r, tags)}
        if r.id in trunk_details:  # trunk-details: only a trunk's parent port has the key
            item["trunk_details"] = trunk_details[r.id]
        if binding:
            vif_type, details = vif(r)
            item.update({"binding:host_id": r.host_id, "binding:vif_type": vif_type, "binding:vif_details": details,
                         "binding:profile": r.binding_profile or {}})
        out.append(item)
    return out


def routers(svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Router]) -> list[dict[str, Any]]:
    gw_ids = [r.gw_port_id for r in rows if r.gw_port_id]
    gw_ports = {p.id: p for p in s.scalars(select(Port).where(_in(Port.id, gw_ids)))} if gw_ids else {}
    gw_ips = fixed_ips(s, gw_ids)
    tags = tags_for(s, [r.id for r in rows])
    out = []
    for r in rows:
        gw = gw_ports.get(r.gw_port_id or "")
        info = None if gw is None else {"network_id": gw.network_id, "enable_snat": r.enable_snat,
                                        "external_fixed_ips": gw_ips.get(gw.id, [])}
        out.append({"id": r.id, "name": r.name, **_project(r), "admin_state_up": r.admin_state_up,
                    "status": r.status, "external_gateway_info": info, "routes": r.routes or [],
                    "distributed": False, "ha": False, "flavor_id": None,
                    "availability_zone_hints": r.availability_zone_hints or [], "availability_zones": [AZ],
                    **standard(r, tags)})
    return out


def _port_details(port: Port | None) -> dict[str, Any] | None:
    """The fip-port-details extension: the associated port's main fields, read with the floating IP."""
    if port is None:
        return None
    return {"name": port.name, "network_id": port.network_id, "mac_address": port.mac_address,
            "admin_state_up": port.admin_state_up, "status": port.status, "device_id": port.device_id,
            "device_owner": port.device_owner}


def floatingips(svc: NetworkService, s: Session, ctx: RequestContext, rows: list[FloatingIP]) -> list[dict[str, Any]]:
    tags = tags_for(s, [r.id for r in rows])
    port_ids = {r.port_id for r in rows if r.port_id}
    ports = {p.id: p for p in s.scalars(select(Port).where(Port.id.in_(port_ids)))} if port_ids else {}
    return [{"id": r.id, **_project(r), "floating_network_id": r.floating_network_id,
             "floating_ip_address": r.floating_ip_address, "port_id": r.port_id,
             "fixed_ip_address": r.fixed_ip_address, "router_id": r.router_id, "status": r.status,
             "port_details": _port_details(ports.get(r.port_id) if r.port_id else None), "port_forwardings": [],
             "dns_domain": r.dns_domain or "", "dns_name": r.dns_name or "", "qos_policy_id": None,
             **standard(r, tags)} for r in rows]


def rule(r: SecurityGroupRule) -> dict[str, Any]:
    return {"id": r.id, **_project(r), "security_group_id": r.security_group_id, "direction": r.direction,
            "ethertype": r.ethertype, "protocol": r.protocol, "port_range_min": r.port_range_min,
            "port_range_max": r.port_range_max, "remote_ip_prefix": r.remote_ip_prefix,
            "remote_group_id": r.remote_group_id, "remote_address_group_id": None, "normalized_cidr":
            r.remote_ip_prefix, "belongs_to_default_sg": None, "description": r.description or "",
            "created_at": iso(r.created_at), "updated_at": iso(r.updated_at),
            "revision_number": r.revision_number or 0, "tags": []}


def security_groups(svc: NetworkService, s: Session, ctx: RequestContext,
                    rows: list[SecurityGroup]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    rules: dict[str, list[dict[str, Any]]] = {}
    for i in range(0, len(ids), 500):
        for r in s.scalars(select(SecurityGroupRule).where(_in(SecurityGroupRule.security_group_id, ids[i:i + 500]))):
            rules.setdefault(r.security_group_id, []).append(rule(r))
    tags = tags_for(s, ids)
    return [{"id": r.id, "name": r.name, **_project(r), "stateful": r.stateful, "shared": False,
             "security_group_rules": rules.get(r.id, []), **standard(r, tags)} for r in rows]


def security_group_rules(svc: NetworkService, s: Session, ctx: RequestContext,
                         rows: list[SecurityGroupRule]) -> list[dict[str, Any]]:
    return [rule(r) for r in rows]
