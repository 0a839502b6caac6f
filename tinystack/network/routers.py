"""Routers: the external gateway (SNAT on by default, fixed IPs on the external network), interfaces added
and removed by subnet or by port, and static routes whose next hops must sit on an attached subnet."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.network import allocation, views
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
from tinystack.network.models import FloatingIP, IPAllocation, Network, Port, PortSecurityGroup, Router, Subnet
from tinystack.network.ports import remove as remove_port

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

ATTRS = ("name", "description", "admin_state_up", "external_gateway_info", "routes", "project_id", "tenant_id",
         "availability_zone_hints", "distributed", "ha", "flavor_id")
INTERFACE = "network:router_interface"
GATEWAY = "network:router_gateway"


def interface_ports(s: Session, router_id: str) -> list[Port]:
    return list(s.scalars(select(Port).where(Port.device_id == router_id, Port.device_owner == INTERFACE)))


def interface_subnets(s: Session, router_id: str) -> list[Subnet]:
    return list(s.scalars(select(Subnet).join(IPAllocation, IPAllocation.subnet_id == Subnet.id)
                          .join(Port, Port.id == IPAllocation.port_id)
                          .where(Port.device_id == router_id, Port.device_owner == INTERFACE)))


def _routes(s: Session, router: Router, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise bad("Invalid input for routes. Reason: not a list.")
    cidrs = [ipaddress.ip_network(sn.cidr) for sn in interface_subnets(s, router.id)]
    if router.gw_port_id:
        cidrs += [ipaddress.ip_network(sn.cidr) for sn in s.scalars(
            select(Subnet).join(IPAllocation, IPAllocation.subnet_id == Subnet.id)
            .where(IPAllocation.port_id == router.gw_port_id))]
    out = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise bad(f"Invalid input for routes. Reason: Invalid data format for hostroute: '{route}'.")
        try:
            dest = ipaddress.ip_network(route["destination"])
            hop = ipaddress.ip_address(route["nexthop"])
        except (ValueError, TypeError):
            raise bad(f"Invalid format for routes: {route}.", "InvalidRoutes") from None
        if not any(hop in c for c in cidrs):
            raise bad(f"Invalid format for routes: {route}, the nexthop is not connected with router.",
                      "InvalidRoutes")
        item = {"destination": str(dest), "nexthop": str(hop)}
        if item not in out:
            out.append(item)
    return out


def _set_gateway(svc: NetworkService, s: Session, ctx: RequestContext, router: Router, info: Any, action: str,
                 changes: Changes) -> None:
    changes.add(("router", router.id))
    if info is None or info == {}:
        if router.gw_port_id:
            if s.scalar(select(FloatingIP.id).where(FloatingIP.router_id == router.id).limit(1)):
                raise conflict(f"Gateway cannot be updated for router {router.id}, since a gateway to external "
                               "network is required by one or more floating IPs.",
                               "RouterExternalGatewayInUseByFloatingIp")
            gw = s.get(Port, router.gw_port_id)
            router.gw_port_id = None
            if gw is not None:
                remove_port(s, gw, changes)
        return
    if not isinstance(info, dict) or not set(info) <= {"network_id", "enable_snat", "external_fixed_ips"}:
        raise bad(f"Invalid input for external_gateway_info. Reason: '{info}' is not a valid gateway.")
    check_bool(info, "enable_snat")
    target = {"project_id": router.project_id}
    svc.enforce_attrs(ctx, f"{action}:external_gateway_info", info, target, ("enable_snat", "external_fixed_ips"))
    net_id = info.get("network_id")
    net = s.get(Network, net_id) if isinstance(net_id, str) else None
    if net is None:
        raise not_found("network", str(net_id))
    if not net.external:
        raise bad(f"Bad router request: Network {net.id} is not a valid external network.", "BadRequest")
    if "enable_snat" in info:
        router.enable_snat = info["enable_snat"]
    gw = s.get(Port, router.gw_port_id) if router.gw_port_id else None
    request = info.get("external_fixed_ips")
    if gw is not None and gw.network_id == net.id:
        if request is not None:
            held = {f"{a.subnet_id}/{a.ip_address}": a.ip_address for a in
                    s.scalars(select(IPAllocation).where(IPAllocation.port_id == gw.id))}
            allocation.write(s, gw, allocation.plan(s, net.id, gw.mac_address, request, GATEWAY, held))
        return
    if gw is not None:
        router.gw_port_id = None
        remove_port(s, gw, changes)
    gw = Port(id=new_uuid(), project_id="", network_id=net.id, mac_address=allocation.free_mac(s, net.id),
              device_owner=GATEWAY, device_id=router.id, port_security_enabled=False,
              host_id=svc.network_host() or "")
    s.add(gw)
    s.flush()
    allocation.write(s, gw, allocation.plan(s, net.id, gw.mac_address, request, GATEWAY))
    router.gw_port_id = gw.id
    changes.add(("port", gw.id))
    changes.add(("network", net.id))


class Routers:
    singular = "router"
    plural = "routers"
    quota: str | None = "router"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        q = select(Router)
        if ident is not None:
            q = q.where(Router.id == ident)
        if not ctx.is_admin:
            q = q.where(Router.project_id == ctx.project_id)
        return list(s.scalars(q))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return views.routers(svc, s, ctx, rows)

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, ATTRS)
        check_str(attrs, "name", "description")
        check_bool(attrs, "admin_state_up")
        if attrs.get("distributed") or attrs.get("ha"):
            raise bad("Distributed and HA routers are not supported by this cloud.", "InvalidInput")
        project = svc.owner(ctx, attrs)
        svc.enforce(ctx, "create_router", {"project_id": project})
        svc.check_quota(s, "router", project, Router)
        router = Router(id=new_uuid(), project_id=project, name=attrs.get("name", ""),
                        description=attrs.get("description", ""), admin_state_up=attrs.get("admin_state_up", True),
                        availability_zone_hints=list(attrs.get("availability_zone_hints") or []), routes=[])
        s.add(router)
        s.flush()
        _set_gateway(svc, s, ctx, router, attrs.get("external_gateway_info"), "create_router", changes)
        if attrs.get("routes"):
            router.routes = _routes(s, router, attrs["routes"])
        return router.id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Router, attrs: dict[str, Any],
               changes: Changes) -> None:
        unknown_attrs(attrs, ("name", "description", "admin_state_up", "external_gateway_info", "routes",
                              "distributed", "ha"))
        check_str(attrs, "name", "description")
        check_bool(attrs, "admin_state_up")
        svc.enforce(ctx, "update_router", {"project_id": row.project_id})
        if "external_gateway_info" in attrs:
            _set_gateway(svc, s, ctx, row, attrs["external_gateway_info"], "update_router", changes)
        if "routes" in attrs:
            row.routes = _routes(s, row, attrs["routes"] or [])
        for key in ("name", "description", "admin_state_up"):
            if key in attrs:
                setattr(row, key, attrs[key])
        touch(row)
        changes.add(("router", row.id))

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Router, changes: Changes) -> None:
        svc.enforce(ctx, "delete_router", {"project_id": row.project_id})
        if interface_ports(s, row.id):
            raise conflict(f"Router {row.id} still has ports", "RouterInUse")
        if s.scalar(select(FloatingIP.id).where(FloatingIP.router_id == row.id).limit(1)):
            raise conflict(f"Router {row.id} still has floating IPs associated", "RouterInUse")
        _set_gateway(svc, s, ctx, row, None, "update_router", changes)
        drop_tags(s, row.id)
        s.delete(row)
        changes.add(("router", row.id))


def _interface_info(router: Router, port: Port, subnet_ids: list[str]) -> dict[str, Any]:
    return {"id": router.id, "tenant_id": router.project_id, "project_id": router.project_id, "port_id": port.id,
            "network_id": port.network_id, "subnet_id": subnet_ids[0] if subnet_ids else None,
            "subnet_ids": subnet_ids}


def _check_overlap(s: Session, router: Router, new: list[Subnet]) -> None:
    for have in interface_subnets(s, router.id):
        for sn in new:
            if ipaddress.ip_network(have.cidr).overlaps(ipaddress.ip_network(sn.cidr)):
                raise bad(f"Bad router request: Cidr {sn.cidr} of subnet {sn.id} overlaps with cidr {have.cidr} of "
                          f"subnet {have.id}.", "BadRequest")


def add_interface(svc: NetworkService, ctx: RequestContext, router_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not ({"subnet_id", "port_id"} & set(body)):
        raise bad("Bad router request: Either subnet_id or port_id must be specified.", "BadRequest")
    if "subnet_id" in body and "port_id" in body:
        raise bad("Bad router request: Cannot specify both subnet-id and port-id.", "BadRequest")

    def do(s: Session, changes: Changes) -> dict[str, Any]:
        router = svc.find(s, ctx, "routers", router_id)
        svc.enforce(ctx, "add_router_interface", {"project_id": router.project_id})
        changes.add(("router", router.id))
        if "port_id" in body:
            port = svc.find(s, ctx, "ports", str(body["port_id"]))
            if port.device_id and port.device_owner:
                raise conflict(f"Port {port.id} is in use by {port.device_owner} {port.device_id}.", "PortInUse")
            subnets = list(s.scalars(select(Subnet).join(IPAllocation, IPAllocation.subnet_id == Subnet.id)
                                     .where(IPAllocation.port_id == port.id)))
            if not subnets:
                raise bad("Bad router request: Router port must have at least one fixed IP.", "BadRequest")
            _check_overlap(s, router, subnets)
            port.device_id, port.device_owner = router.id, INTERFACE
            port.host_id = svc.network_host() or port.host_id
            touch(port)
            s.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port.id))
            changes.update({("port", port.id), ("network", port.network_id)})
            return _interface_info(router, port, [sn.id for sn in subnets])
        subnet = svc.find(s, ctx, "subnets", str(body["subnet_id"]))
        if subnet.gateway_ip is None:
            raise bad("Bad router request: Subnet for router interface must have a gateway IP.", "BadRequest")
        _check_overlap(s, router, [subnet])
        holder = s.scalar(select(IPAllocation.port_id).where(IPAllocation.subnet_id == subnet.id,
                                                            IPAllocation.ip_address == subnet.gateway_ip))
        if holder is not None:
            raise conflict(f"IP address {subnet.gateway_ip} already allocated in subnet {subnet.id}",
                           "IpAddressAlreadyAllocated")
        port = Port(id=new_uuid(), project_id=router.project_id, network_id=subnet.network_id,
                    mac_address=allocation.free_mac(s, subnet.network_id), device_owner=INTERFACE,
                    device_id=router.id, port_security_enabled=False, host_id=svc.network_host() or "")
        s.add(port)
        s.flush()
        allocation.write(s, port, [(subnet.id, subnet.gateway_ip)])
        changes.update({("port", port.id), ("network", port.network_id)})
        return _interface_info(router, port, [subnet.id])

    return svc.transact(do)


def remove_interface(svc: NetworkService, ctx: RequestContext, router_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not ({"subnet_id", "port_id"} & set(body)):
        raise bad("Bad router request: Either subnet_id or port_id must be specified.", "BadRequest")

    def do(s: Session, changes: Changes) -> dict[str, Any]:
        router = svc.find(s, ctx, "routers", router_id)
        svc.enforce(ctx, "remove_router_interface", {"project_id": router.project_id})
        ports = interface_ports(s, router.id)
        port = None
        if "port_id" in body:
            port = next((p for p in ports if p.id == body["port_id"]), None)
            if port is None:
                raise not_found_interface(router.id, f"port {body['port_id']}")
        if "subnet_id" in body:
            subnet_id = body["subnet_id"]
            holders = set(s.scalars(select(IPAllocation.port_id).where(IPAllocation.subnet_id == subnet_id)))
            match = [p for p in ports if p.id in holders]
            if not match or (port is not None and port not in match):
                if s.get(Subnet, subnet_id) is None:
                    raise not_found("subnet", str(subnet_id))
                raise not_found_interface(router.id, f"subnet {subnet_id}")
            port = match[0]
        assert port is not None
        subnet_ids = list(s.scalars(select(IPAllocation.subnet_id).where(IPAllocation.port_id == port.id)))
        if s.scalar(select(FloatingIP.id).where(FloatingIP.router_id == router.id,
                                                FloatingIP.port_id.in_(
                                                    select(IPAllocation.port_id)
                                                    .where(IPAllocation.subnet_id.in_(subnet_ids)))).limit(1)):
            raise conflict(f"Router interface for subnet {subnet_ids[0]} on router {router.id} cannot be deleted, as "
                           "it is required by one or more floating IPs.", "RouterInterfaceInUseByFloatingIP")
        info = _interface_info(router, port, subnet_ids)
        remove_port(s, port, changes)
        changes.add(("router", router.id))
        return info

    return svc.transact(do)


def not_found_interface(router_id: str, what: str) -> Exception:
    return errors.NotFound(f"Router {router_id} does not have an interface with {what}.",
                           type="RouterInterfaceNotFoundForSubnet" if what.startswith("subnet")
                           else "RouterInterfaceNotFound")

