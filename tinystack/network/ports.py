"""Ports: addresses and MAC, device owner/id, security groups, allowed address pairs, port security and
the admin-only binding attributes. Status stays DOWN until the agent reports the port wired."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network import allocation, dhcpopts, dns, securitygroups, trunks, views
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
from tinystack.network.models import FloatingIP, IPAllocation, Network, Port, PortSecurityGroup

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

BINDING = ("binding:host_id", "binding:profile", "binding:vnic_type")
ATTRS = ("name", "description", "network_id", "admin_state_up", "mac_address", "fixed_ips", "device_id",
         "device_owner", "security_groups", "allowed_address_pairs", "port_security_enabled", "project_id",
         "tenant_id", "dns_name", "extra_dhcp_opts", "propagate_uplink_status", *BINDING)
UPDATABLE = tuple(a for a in ATTRS if a not in ("network_id", "project_id", "tenant_id"))
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "vdpa", "remote-managed")
L3_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip",
             "network:router_interface_distributed", "network:ha_router_replicated_interface")


def _pairs(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise bad("Invalid input for allowed_address_pairs. Reason: not a list.")
    out = []
    for pair in value:
        if not isinstance(pair, dict) or "ip_address" not in pair or not set(pair) <= {"ip_address", "mac_address"}:
            raise bad(f"Invalid input for allowed_address_pairs. Reason: '{pair}' is not a valid address pair.",
                      "AllowedAddressPairsMissingIP")
        try:
            ip = ipaddress.ip_network(pair["ip_address"], strict=False)
        except (ValueError, TypeError):
            raise bad(f"Invalid input for allowed_address_pairs. Reason: '{pair['ip_address']}' is not a valid IP "
                      "address.") from None
        text = str(ip.network_address) if ip.prefixlen == ip.max_prefixlen else str(ip)
        item = {"ip_address": text}
        if "mac_address" in pair and pair["mac_address"] is not None:
            item["mac_address"] = str(pair["mac_address"]).lower()
        if item in out:
            raise bad("Request contains duplicate address pair.", "DuplicateAddressPairInRequest")
        out.append(item)
    return out


def _fill_pair_macs(port: Port) -> None:
    port.allowed_address_pairs = [{**p, "mac_address": p.get("mac_address") or port.mac_address}
                                  for p in port.allowed_address_pairs or []]


def _groups(svc: NetworkService, s: Session, ctx: RequestContext, project: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise bad("Invalid input for security_groups. Reason: not a list.")
    out = []
    for sg_id in value:
        if not isinstance(sg_id, str) or not securitygroups.SecurityGroups().visible(svc, s, ctx, sg_id):
            raise not_found("security_group", str(sg_id))
        if sg_id not in out:
            out.append(sg_id)
    return out


def set_groups(s: Session, port_id: str, groups: list[str], changes: Changes) -> None:
    old = set(s.scalars(select(PortSecurityGroup.security_group_id).where(PortSecurityGroup.port_id == port_id)))
    s.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port_id))
    for sg in groups:
        s.add(PortSecurityGroup(port_id=port_id, security_group_id=sg))
    for sg in old | set(groups):
        changes.add(("sgmembers", sg))


def port_changes(port: Port, changes: Changes) -> None:
    changes.add(("port", port.id))
    changes.add(("network", port.network_id))
    if port.device_owner.startswith("network:router") and port.device_id:
        changes.add(("router", port.device_id))


class Ports:
    singular = "port"
    plural = "ports"
    quota: str | None = "port"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        q = select(Port)
        if ident is not None:
            q = q.where(Port.id == ident)
        if not ctx.is_admin:
            owned = select(Network.id).where(Network.project_id == ctx.project_id)
            q = q.where(or_(Port.project_id == ctx.project_id, Port.network_id.in_(owned)))
        return list(s.scalars(q))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return views.ports(svc, s, ctx, rows)

    def _check(self, svc: NetworkService, ctx: RequestContext, attrs: dict[str, Any], action: str,
               target: dict[str, Any]) -> None:
        check_str(attrs, "name", "description", "device_id", "device_owner")
        if "dns_name" in attrs:
            attrs["dns_name"] = dns.check_name(attrs["dns_name"])
        check_bool(attrs, "admin_state_up", "port_security_enabled")
        names = ["mac_address", "port_security_enabled", "allowed_address_pairs", "binding:host_id",
                 "binding:profile"]
        if any(isinstance(f, dict) and "ip_address" in f for f in attrs.get("fixed_ips") or []):
            svc.enforce(ctx, f"{action}:fixed_ips:ip_address", target)
        if str(attrs.get("device_owner", "")).startswith("network:"):
            names.append("device_owner")
        svc.enforce_attrs(ctx, action, attrs, target, tuple(names))
        vnic = attrs.get("binding:vnic_type")
        if vnic is not None and vnic not in VNIC_TYPES:
            raise bad(f"Invalid input for binding:vnic_type. Reason: '{vnic}' is not in {list(VNIC_TYPES)}.")
        if "binding:profile" in attrs and not isinstance(attrs["binding:profile"], dict | type(None)):
            raise bad("Invalid input for binding:profile. Reason: not a dictionary.")

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, ATTRS)
        net_id = attrs.get("network_id")
        if not isinstance(net_id, str):
            raise bad("Failed to parse request. Required attribute 'network_id' not specified")
        nets = svc.resource("networks").visible(svc, s, ctx, net_id)
        if not nets:
            raise not_found("network", net_id)
        net: Network = nets[0]
        project = svc.owner(ctx, attrs)
        target = {"project_id": project, "network:project_id": net.project_id}
        svc.enforce(ctx, "create_port", target)
        self._check(svc, ctx, attrs, "create_port", target)
        svc.check_quota(s, "port", project, Port)
        port_id = new_uuid()
        mac = (allocation.check_mac(s, net.id, attrs["mac_address"]) if attrs.get("mac_address") is not None
               else allocation.free_mac(s, net.id))
        owner = attrs.get("device_owner") or ""
        security = attrs.get("port_security_enabled", net.port_security_enabled)
        pairs = _pairs(attrs.get("allowed_address_pairs") or [])
        if pairs and not security:
            raise conflict("Port Security must be enabled in order to have allowed address pairs on a port.",
                           "AddressPairAndPortSecurityRequired")
        if "security_groups" in attrs and attrs["security_groups"] is not None:
            groups = _groups(svc, s, ctx, project, attrs["security_groups"])
        elif security and not owner.startswith("network:"):
            groups = [securitygroups.ensure_default(svc, s, project, changes)]
        else:
            groups = []
        if groups and not security:
            raise bad("Port has no security group while port security is disabled; to apply security groups, "
                      "port security must be enabled and the port must have an IP address.",
                      "PortSecurityAndIPRequiredForSecurityGroups")
        port = Port(id=port_id, project_id=project, network_id=net.id, name=attrs.get("name", ""),
                    description=attrs.get("description", ""), mac_address=mac,
                    admin_state_up=attrs.get("admin_state_up", True), status="DOWN", device_owner=owner,
                    device_id=attrs.get("device_id") or "", port_security_enabled=security,
                    allowed_address_pairs=pairs, host_id=attrs.get("binding:host_id") or "",
                    vnic_type=attrs.get("binding:vnic_type") or "normal",
                    binding_profile=attrs.get("binding:profile") or {}, dns_name=attrs.get("dns_name") or "",
                    extra_dhcp_opts=dhcpopts.created(attrs.get("extra_dhcp_opts")))
        _fill_pair_macs(port)
        s.add(port)
        s.flush()
        allocation.write(s, port, allocation.plan(s, net.id, mac, attrs.get("fixed_ips"), owner))
        set_groups(s, port.id, groups, changes)
        port_changes(port, changes)
        return port_id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Port, attrs: dict[str, Any],
               changes: Changes) -> None:
        unknown_attrs(attrs, UPDATABLE)
        net = s.get(Network, row.network_id)
        target = {"project_id": row.project_id, "network:project_id": net.project_id if net else ""}
        svc.enforce(ctx, "update_port", target)
        self._check(svc, ctx, attrs, "update_port", target)
        port_changes(row, changes)
        if "mac_address" in attrs and attrs["mac_address"] != row.mac_address:
            if row.host_id:
                raise conflict(f"Port {row.id} is bound: its MAC address cannot be changed.", "PortBound")
            row.mac_address = allocation.check_mac(s, row.network_id, attrs["mac_address"], row.id)
        if "port_security_enabled" in attrs:
            row.port_security_enabled = attrs["port_security_enabled"]
        if "allowed_address_pairs" in attrs:
            row.allowed_address_pairs = _pairs(attrs["allowed_address_pairs"] or [])
        _fill_pair_macs(row)
        if row.allowed_address_pairs and not row.port_security_enabled:
            raise conflict("Port Security must be enabled in order to have allowed address pairs on a port.",
                           "AddressPairAndPortSecurityRequired")
        groups = list(s.scalars(select(PortSecurityGroup.security_group_id)
                                .where(PortSecurityGroup.port_id == row.id)))
        if "security_groups" in attrs:
            groups = _groups(svc, s, ctx, row.project_id, attrs["security_groups"] or [])
        elif attrs.get("port_security_enabled") is False:
            groups = groups if groups else []
        if groups and not row.port_security_enabled:
            raise conflict("Port security must be disabled only when the port has no security groups.",
                           "PortSecurityPortHasSecurityGroup")
        set_groups(s, row.id, groups, changes)
        if "fixed_ips" in attrs:
            held = {f"{a.subnet_id}/{a.ip_address}": a.ip_address for a in
                    s.scalars(select(IPAllocation).where(IPAllocation.port_id == row.id))}
            request = attrs["fixed_ips"]
            allocation.write(s, row, allocation.plan(s, row.network_id, row.mac_address,
                                                     request if request is not None else [], row.device_owner, held))
        if "binding:host_id" in attrs and (attrs["binding:host_id"] or "") != row.host_id:
            row.host_id = attrs["binding:host_id"] or ""
            row.status = "DOWN"  # wired again on the new host before it is ACTIVE
        for key, column in (("binding:vnic_type", "vnic_type"), ("binding:profile", "binding_profile")):
            if key in attrs:
                setattr(row, column, attrs[key] or ({} if column == "binding_profile" else "normal"))
        if "binding:host_id" in attrs or "binding:profile" in attrs:
            trunks.follow_parent(s, row, changes)
        if "extra_dhcp_opts" in attrs:
            row.extra_dhcp_opts = dhcpopts.merged(row.extra_dhcp_opts or [], attrs["extra_dhcp_opts"])
        for key in ("name", "description", "admin_state_up", "device_id", "device_owner", "dns_name"):
            if key in attrs:
                setattr(row, key, attrs[key] if attrs[key] is not None else "")
        touch(row)
        port_changes(row, changes)

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Port, changes: Changes) -> None:
        net = s.get(Network, row.network_id)
        svc.enforce(ctx, "delete_port", {"project_id": row.project_id,
                                         "network:project_id": net.project_id if net else ""})
        if (row.device_owner in L3_OWNERS and not ctx.is_admin) or row.device_owner == "network:router_interface":
            raise conflict(f"Port {row.id} cannot be deleted directly via the port API: has device owner "
                           f"{row.device_owner}.", "L3PortInUse")
        trunks.refuse_port_delete(s, row)
        remove(s, row, changes)


def remove(s: Session, row: Port, changes: Changes) -> None:
    """Delete a port and what hangs on it: addresses, group memberships, floating IP associations."""
    for fip in s.scalars(select(FloatingIP).where(FloatingIP.port_id == row.id)):
        if fip.router_id:
            changes.add(("router", fip.router_id))
    s.execute(update(FloatingIP).where(FloatingIP.port_id == row.id)
              .values(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN"))
    set_groups(s, row.id, [], changes)
    port_changes(row, changes)
    drop_tags(s, row.id)
    s.execute(delete(IPAllocation).where(IPAllocation.port_id == row.id))
    s.delete(row)
    s.flush()
