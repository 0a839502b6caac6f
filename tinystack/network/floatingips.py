"""Floating IPs: an address on an external network, associated with a port's fixed IPv4 address through
the router that joins the port's subnet to that external network."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.network import allocation, dns, views
from tinystack.network.common import bad, check_str, conflict, drop_tags, new_uuid, not_found, touch, unknown_attrs
from tinystack.network.models import FloatingIP, IPAllocation, Network, Port, Router
from tinystack.network.ports import remove as remove_port
from tinystack.network.routers import INTERFACE

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

ATTRS = ("floating_network_id", "port_id", "fixed_ip_address", "floating_ip_address", "subnet_id", "description",
         "project_id", "tenant_id", "dns_name", "dns_domain", "qos_policy_id")


def _dns(attrs: dict[str, Any]) -> tuple[str, str]:
    """dns-integration on a floating IP: ``dns_name`` (one label) and ``dns_domain`` come together or not
    at all, and are kept as given at create."""
    name = dns.check_name(attrs.get("dns_name"))
    domain = dns.check_domain(attrs.get("dns_domain"))
    if domain and not name:
        raise bad("Invalid input for operation: dns_domain cannot be specified without a dns_name.", "BadRequest")
    if name and not domain:
        raise bad("Invalid input for operation: dns_name cannot be specified without a dns_domain.", "BadRequest")
    return name, domain


def _router_for(s: Session, external_net: str, subnet_id: str) -> str | None:
    """The router with a gateway on ``external_net`` and an interface on ``subnet_id``."""
    with_interface = select(Port.device_id).join(IPAllocation, IPAllocation.port_id == Port.id).where(
        Port.device_owner == INTERFACE, IPAllocation.subnet_id == subnet_id)
    gateways = select(Port.id).where(Port.network_id == external_net)
    return s.scalar(select(Router.id).where(Router.id.in_(with_interface), Router.gw_port_id.in_(gateways))
                    .order_by(Router.created_at).limit(1))


def _associate(svc: NetworkService, s: Session, ctx: RequestContext, fip: FloatingIP, port_id: Any,
               fixed: Any, changes: Changes) -> None:
    if fip.router_id:
        changes.add(("router", fip.router_id))
    if fip.port_id:
        changes.add(("fip_port", fip.port_id))  # its server's addresses lose this floating IP
    if port_id is None:
        fip.port_id = fip.fixed_ip_address = fip.router_id = None
        fip.status = "DOWN"
        return
    ports = svc.resource("ports").visible(svc, s, ctx, str(port_id))
    if not ports:
        raise not_found("port", str(port_id))
    port: Port = ports[0]
    if port.device_owner.startswith("network:"):
        raise bad(f"Bad floatingip request: Port {port.id} has device owner {port.device_owner} and cannot be "
                  "associated with a floating IP.", "BadRequest")
    v4 = [(a.subnet_id, a.ip_address) for a in s.scalars(select(IPAllocation).where(IPAllocation.port_id == port.id))
          if ipaddress.ip_address(a.ip_address).version == 4]
    if fixed is not None:
        match = [pair for pair in v4 if pair[1] == fixed]
        if not match:
            raise bad(f"Bad floatingip request: Port {port.id} does not have fixed ip {fixed}.", "BadRequest")
    elif not v4:
        raise bad(f"Bad floatingip request: Port {port.id} does not have any IPv4 address.", "BadRequest")
    elif len(v4) > 1:
        raise bad(f"Bad floatingip request: Port {port.id} has multiple fixed IPv4 addresses. Must provide a "
                  "specific IPv4 address when assigning a floating IP.", "BadRequest")
    else:
        match = v4
    subnet_id, ip = match[0]
    other = s.scalar(select(FloatingIP.id).where(FloatingIP.port_id == port.id, FloatingIP.fixed_ip_address == ip,
                                                 FloatingIP.id != fip.id))
    if other is not None:
        raise conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port {port.id} "
                       f"using fixed IP {ip}, as that fixed IP already has a floating IP on external network "
                       f"{fip.floating_network_id}.", "FloatingIPPortAlreadyAssociated")
    router_id = _router_for(s, fip.floating_network_id, subnet_id)
    if router_id is None:
        raise errors.NotFound(f"External network {fip.floating_network_id} is not reachable from subnet {subnet_id}. "
                              f"Therefore, cannot associate Port {port.id} with a Floating IP.",
                              type="ExternalGatewayForFloatingIPNotFound")
    fip.port_id, fip.fixed_ip_address, fip.router_id = port.id, ip, router_id
    fip.status = "DOWN"  # ACTIVE once the agent has configured the NAT
    changes.add(("router", router_id))
    changes.add(("fip_port", port.id))


class FloatingIPs:
    singular = "floatingip"
    plural = "floatingips"
    quota: str | None = "floatingip"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        q = select(FloatingIP)
        if ident is not None:
            q = q.where(FloatingIP.id == ident)
        if not ctx.is_admin:
            q = q.where(FloatingIP.project_id == ctx.project_id)
        return list(s.scalars(q))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return views.floatingips(svc, s, ctx, rows)

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, ATTRS)
        check_str(attrs, "description")
        project = svc.owner(ctx, attrs)
        target = {"project_id": project}
        svc.enforce(ctx, "create_floatingip", target)
        svc.enforce_attrs(ctx, "create_floatingip", attrs, target, ("floating_ip_address",))
        net_id = attrs.get("floating_network_id")
        if not isinstance(net_id, str):
            raise bad("Failed to parse request. Required attribute 'floating_network_id' not specified")
        net = s.get(Network, net_id)
        if net is None or not (net.external or net.shared or net.project_id == project or ctx.is_admin):
            raise not_found("network", net_id)
        if not net.external:
            raise bad(f"Bad floatingip request: Network {net_id} is not a valid external network.", "BadRequest")
        dns_name, dns_domain = _dns(attrs)
        svc.check_quota(s, "floatingip", project, FloatingIP)
        fip_id = new_uuid()
        request = None
        if attrs.get("floating_ip_address") is not None or attrs.get("subnet_id") is not None:
            item = {k: attrs[k] for k in ("subnet_id",) if attrs.get(k) is not None}
            if attrs.get("floating_ip_address") is not None:
                item["ip_address"] = attrs["floating_ip_address"]
            request = [item]
        port = Port(id=new_uuid(), project_id="", network_id=net.id, mac_address=allocation.free_mac(s, net.id),
                    device_owner="network:floatingip", device_id=fip_id, port_security_enabled=False)
        s.add(port)
        s.flush()
        pairs = [p for p in allocation.plan(s, net.id, port.mac_address, request, port.device_owner)
                 if ipaddress.ip_address(p[1]).version == 4][:1]
        if not pairs:
            raise conflict(f"No more IP addresses available on network {net.id}.", "IpAddressGenerationFailure")
        allocation.write(s, port, pairs)
        fip = FloatingIP(id=fip_id, project_id=project, floating_network_id=net.id, floating_port_id=port.id,
                         floating_ip_address=pairs[0][1], description=attrs.get("description", ""), status="DOWN",
                         dns_name=dns_name, dns_domain=dns_domain)
        s.add(fip)
        s.flush()
        if attrs.get("port_id") is not None:
            _associate(svc, s, ctx, fip, attrs["port_id"], attrs.get("fixed_ip_address"), changes)
        return fip_id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: FloatingIP, attrs: dict[str, Any],
               changes: Changes) -> None:
        for name in ("dns_name", "dns_domain"):
            if name in attrs:
                raise bad(f"Cannot update read-only attribute {name}", "HTTPBadRequest")
        unknown_attrs(attrs, ("port_id", "fixed_ip_address", "description", "qos_policy_id"))
        check_str(attrs, "description")
        svc.enforce(ctx, "update_floatingip", {"project_id": row.project_id})
        if "port_id" in attrs:
            _associate(svc, s, ctx, row, attrs["port_id"], attrs.get("fixed_ip_address"), changes)
        if "description" in attrs:
            row.description = attrs["description"]
        touch(row)

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: FloatingIP, changes: Changes) -> None:
        svc.enforce(ctx, "delete_floatingip", {"project_id": row.project_id})
        if row.router_id:
            changes.add(("router", row.router_id))
        if row.port_id:
            changes.add(("fip_port", row.port_id))
        port = s.get(Port, row.floating_port_id)
        drop_tags(s, row.id)
        s.delete(row)
        s.flush()
        if port is not None:
            remove_port(s, port, changes)
