"""Subnets: CIDR (given or carved from a subnet pool), gateway, allocation pools, DNS and host routes,
IPv6 address modes; no overlap on one network; SubnetInUse while ports other than DHCP hold addresses."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network import allocation, ipam, subnetpools, views
from tinystack.network.common import (
    bad,
    check_bool,
    check_str,
    conflict,
    drop_tags,
    new_uuid,
    not_found,
    touch,
    unknown_attrs,
)
from tinystack.network.models import IPAllocation, Network, Port, Subnet

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

ATTRS = ("name", "description", "network_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp", "allocation_pools",
         "dns_nameservers", "host_routes", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "prefixlen",
         "use_default_subnetpool", "project_id", "tenant_id", "service_types", "segment_id")
UPDATABLE = ("name", "description", "gateway_ip", "enable_dhcp", "allocation_pools", "dns_nameservers", "host_routes",
             "service_types", "segment_id")
V6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")


def _nameservers(value: Any, version: int) -> list[str]:
    if not isinstance(value, list):
        raise bad("Invalid input for dns_nameservers. Reason: not a list.")
    out = []
    for item in value:
        ip = ipam.parse_ip(item, "dns_nameservers")
        if str(ip) in out:
            raise bad(f"Invalid input for dns_nameservers. Reason: Duplicate nameserver '{item}'.")
        out.append(str(ip))
    return out


def _routes(value: Any, net: ipam.IPNet) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise bad("Invalid input for host_routes. Reason: not a list.")
    out = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise bad(f"Invalid input for host_routes. Reason: Invalid data format for hostroute: '{route}'.")
        try:
            dest = ipaddress.ip_network(route["destination"], strict=True)
        except (ValueError, TypeError):
            raise bad(f"Invalid input for host_routes. Reason: '{route['destination']}' is not a valid IP "
                      "subnet.") from None
        hop = ipam.parse_ip(route["nexthop"], "host_routes")
        if dest.version != net.version or hop.version != net.version:
            raise bad("Invalid input for host_routes: IP version mismatch.", "InvalidInput")
        item = {"destination": str(dest), "nexthop": str(hop)}
        if item in out:
            raise bad(f"Invalid input for host_routes. Reason: Duplicate hostroute '{route}'.")
        out.append(item)
    return out


class Subnets:
    singular = "subnet"
    plural = "subnets"
    quota: str | None = "subnet"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        q = select(Subnet)
        if ident is not None:
            q = q.where(Subnet.id == ident)
        if not ctx.is_admin:
            shared = select(Network.id).where(Network.shared.is_(True))
            q = q.where(or_(Subnet.project_id == ctx.project_id, Subnet.network_id.in_(shared)))
        return list(s.scalars(q))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return views.subnets(svc, s, ctx, rows)

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, ATTRS)
        check_str(attrs, "name", "description")
        check_bool(attrs, "enable_dhcp", "use_default_subnetpool")
        net_id = attrs.get("network_id")
        if not isinstance(net_id, str):
            raise bad("Failed to parse request. Required attribute 'network_id' not specified")
        nets = svc.resource("networks").visible(svc, s, ctx, net_id)
        if not nets:
            raise not_found("network", net_id)
        net: Network = nets[0]
        project = svc.owner(ctx, attrs)
        svc.enforce(ctx, "create_subnet", {"project_id": project, "network:project_id": net.project_id})
        svc.check_quota(s, "subnet", project, Subnet)
        version = attrs.get("ip_version")
        if version is not None and version not in (4, 6):
            try:
                version = int(version)
            except (TypeError, ValueError):
                version = 0
            if version not in (4, 6):
                raise bad(f"Invalid input for ip_version. Reason: {attrs['ip_version']} is not in [4, 6].")
        pool_id = subnetpools.resolve(svc, s, ctx, attrs, version)
        if attrs.get("cidr") is None:
            if pool_id is None:
                raise bad("Bad subnets request: a cidr must be provided in the absence of a subnet pool.")
            cidr = subnetpools.carve(s, pool_id, attrs.get("prefixlen"))
        else:
            if "prefixlen" in attrs:
                raise bad("Bad subnets request: cidr and prefixlen must not be supplied together.")
            cidr = attrs["cidr"]
            if pool_id is not None:
                subnetpools.check_in_pool(s, pool_id, cidr)
        net_cidr = ipam.parse_cidr(cidr, version)
        version = net_cidr.version
        cidr = str(net_cidr)
        for other in s.scalars(select(Subnet.cidr).where(Subnet.network_id == net.id)):
            if ipam.overlaps(other, cidr):
                raise bad(f"Invalid input for operation: Requested subnet with cidr: {cidr} for network: {net.id} "
                          "overlaps with another subnet.", "InvalidInput")
        ra, addr = attrs.get("ipv6_ra_mode"), attrs.get("ipv6_address_mode")
        if version == 4 and (ra or addr):
            raise bad("Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version "
                      "is set to 4.", "InvalidInput")
        for name, mode in (("ipv6_ra_mode", ra), ("ipv6_address_mode", addr)):
            if mode is not None and mode not in V6_MODES:
                raise bad(f"Invalid input for {name}. Reason: '{mode}' is not in {list(V6_MODES)}.")
        if ra and addr and ra != addr:
            raise bad(f"Invalid input for operation: ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                      f"'{addr}' is not valid.", "InvalidInput")
        if addr in ("slaac", "dhcpv6-stateless") and net_cidr.prefixlen != 64:
            raise bad(f"Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which "
                      "requires the prefix to be /64.", "InvalidInput")
        gateway = ipam.check_gateway(net_cidr, attrs["gateway_ip"]) if "gateway_ip" in attrs else str(
            ipam.first_host(net_cidr))
        if "allocation_pools" in attrs and attrs["allocation_pools"] is not None:
            pools = ipam.check_pools(net_cidr, attrs["allocation_pools"], gateway)
        else:
            pools = ipam.default_pools(net_cidr, gateway)
        subnet = Subnet(id=new_uuid(), project_id=project, network_id=net.id, name=attrs.get("name", ""),
                        description=attrs.get("description", ""), ip_version=version, cidr=cidr, gateway_ip=gateway,
                        enable_dhcp=attrs.get("enable_dhcp", True), allocation_pools=pools,
                        dns_nameservers=_nameservers(attrs.get("dns_nameservers") or [], version),
                        host_routes=_routes(attrs.get("host_routes") or [], net_cidr), ipv6_ra_mode=ra,
                        ipv6_address_mode=addr, subnetpool_id=pool_id)
        s.add(subnet)
        s.flush()
        allocation.sync_dhcp_port(svc, s, net.id, changes)
        changes.add(("network", net.id))
        return subnet.id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Subnet, attrs: dict[str, Any],
               changes: Changes) -> None:
        unknown_attrs(attrs, UPDATABLE)
        check_str(attrs, "name", "description")
        check_bool(attrs, "enable_dhcp")
        net = s.get(Network, row.network_id)
        svc.enforce(ctx, "update_subnet", {"project_id": row.project_id,
                                           "network:project_id": net.project_id if net else ""})
        net_cidr = ipaddress.ip_network(row.cidr)
        if "gateway_ip" in attrs:
            gateway = ipam.check_gateway(net_cidr, attrs["gateway_ip"])
            if gateway != row.gateway_ip:
                holder = s.scalar(select(Port.device_owner).join(IPAllocation, IPAllocation.port_id == Port.id)
                                  .where(IPAllocation.subnet_id == row.id, IPAllocation.ip_address == row.gateway_ip))
                if holder == "network:router_interface":
                    raise conflict(f"Gateway ip {row.gateway_ip} conflicts with a router interface on subnet "
                                   f"{row.id}.", "GatewayIpInUse")
                if gateway is not None and "allocation_pools" not in attrs \
                        and ipam.in_pools(ipaddress.ip_address(gateway), row.allocation_pools):
                    raise bad(f"Gateway ip {gateway} conflicts with allocation pool "
                              f"{row.allocation_pools}.", "GatewayConflictWithAllocationPools")
            row.gateway_ip = gateway
        if "allocation_pools" in attrs:
            row.allocation_pools = ipam.check_pools(net_cidr, attrs["allocation_pools"], row.gateway_ip)
        if "dns_nameservers" in attrs:
            row.dns_nameservers = _nameservers(attrs["dns_nameservers"] or [], row.ip_version)
        if "host_routes" in attrs:
            row.host_routes = _routes(attrs["host_routes"] or [], net_cidr)
        for key in ("name", "description", "enable_dhcp"):
            if key in attrs:
                setattr(row, key, attrs[key])
        touch(row)
        s.flush()
        allocation.sync_dhcp_port(svc, s, row.network_id, changes)
        changes.add(("network", row.network_id))

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Subnet, changes: Changes) -> None:
        net = s.get(Network, row.network_id)
        svc.enforce(ctx, "delete_subnet", {"project_id": row.project_id,
                                           "network:project_id": net.project_id if net else ""})
        holders = s.execute(select(Port.id, Port.device_owner).join(IPAllocation, IPAllocation.port_id == Port.id)
                            .where(IPAllocation.subnet_id == row.id)).all()
        if any(owner != "network:dhcp" for _, owner in holders):
            raise conflict(f"Unable to complete operation on subnet {row.id}: One or more ports have an IP "
                           "allocation from this subnet.", "SubnetInUse")
        s.execute(delete(IPAllocation).where(IPAllocation.subnet_id == row.id))
        drop_tags(s, row.id)
        s.delete(row)
        s.flush()
        allocation.sync_dhcp_port(svc, s, row.network_id, changes)
        changes.add(("network", row.network_id))
