"""Nova's network proxies: the networking service's security groups, networks and floating IPs in the shapes
Nova served before Neutron (``os-security-groups``, ``os-networks``, ``os-floating-ips``, ``os-floating-ip-pools``).

openstackclient and the Ansible collection still read them; Nova answers them by asking Neutron, and so do we.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinystack.compute.policies import P
from tinystack.core import errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

_NULL_NETWORK_FIELDS = ("broadcast", "cidr", "cidr_v6", "dns1", "dns2", "gateway", "gateway_v6", "netmask",
                        "netmask_v6")


def nova_rule(rule: dict[str, Any], groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One ingress rule as Nova shows it: ports -1 for ICMP without a type, 1-65535 for TCP/UDP without a range."""
    proto = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if proto is not None and low is None:
        low, high = (-1, -1) if proto in ("icmp", "ipv6-icmp", "1", "58") else (1, 65535)
    remote = rule.get("remote_group_id")
    group: dict[str, Any] = {}
    if remote:
        other = groups.get(remote, {})
        group = {"name": other.get("name"), "tenant_id": other.get("project_id")}
    return {"id": rule["id"], "parent_group_id": rule["security_group_id"], "ip_protocol": proto,
            "from_port": low, "to_port": high, "group": group,
            "ip_range": {"cidr": rule["remote_ip_prefix"]} if rule.get("remote_ip_prefix") and not remote else {}}


def nova_group(group: dict[str, Any], groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rules = [nova_rule(r, groups) for r in group.get("security_group_rules", []) if r.get("direction") == "ingress"]
    return {"id": group["id"], "name": group["name"], "description": group.get("description", ""),
            "tenant_id": group.get("project_id"), "rules": rules}


class NetworkProxy:
    """Reads the networking service with the caller's own context, so its policy decides what is visible."""

    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def _net(self) -> Any:
        return self.svc.service("network")

    def _groups(self, ctx: RequestContext) -> dict[str, dict[str, Any]]:
        return {g["id"]: g for g in self._net().list(ctx, "security_groups", {}, "")["security_groups"]}

    def security_groups(self, ctx: RequestContext) -> list[dict[str, Any]]:
        self.svc.enforce(ctx, f"{P}:os-security-groups:get")
        groups = self._groups(ctx)
        return [nova_group(g, groups) for g in groups.values()]

    def security_group(self, ctx: RequestContext, group_id: str) -> dict[str, Any]:
        self.svc.enforce(ctx, f"{P}:os-security-groups:show")
        groups = self._groups(ctx)
        if group_id not in groups:
            raise errors.NotFound(f"Security group {group_id} not found.")
        return nova_group(groups[group_id], groups)

    def server_groups(self, ctx: RequestContext, server_id: str) -> list[dict[str, Any]]:
        """The security groups on the server's ports (``GET /servers/{id}/os-security-groups``)."""
        inst = self.svc.servers.get(ctx, server_id)
        self.svc.enforce(ctx, f"{P}:os-security-groups:list", {"project_id": inst.project_id})
        elevated = self.svc.elevated(ctx)  # the ports are the server's, whoever made them
        ports = self._net().list_ports(elevated, {"device_id": server_id})
        wanted = list(dict.fromkeys(sg for p in ports for sg in p.get("security_groups", [])))
        if not wanted:
            return []
        groups = {g["id"]: g for g in self._net().list(elevated, "security_groups", {}, "")["security_groups"]}
        return [nova_group(groups[g], groups) for g in wanted if g in groups]

    def networks(self, ctx: RequestContext) -> list[dict[str, Any]]:
        self.svc.enforce(ctx, f"{P}:os-networks:list")
        return [self._network(n) for n in self._net().list_networks(ctx, {})]

    def network(self, ctx: RequestContext, network_id: str) -> dict[str, Any]:
        self.svc.enforce(ctx, f"{P}:os-networks:view")
        try:
            return self._network(self._net().show_network(ctx, network_id))
        except errors.NotFound:
            raise errors.NotFound(f"Network {network_id} could not be found.") from None

    @staticmethod
    def _network(net: dict[str, Any]) -> dict[str, Any]:
        # Nova fills only the id and the label from Neutron; the nova-network fields stay null.
        return {"id": net["id"], "label": net["name"], **dict.fromkeys(_NULL_NETWORK_FIELDS)}

    def floating_ip_pools(self, ctx: RequestContext) -> list[dict[str, str]]:
        self.svc.enforce(ctx, f"{P}:os-floating-ip-pools:list")
        return [{"name": n["name"]} for n in self._net().list_networks(ctx, {"router:external": True})]

    def floating_ips(self, ctx: RequestContext) -> list[dict[str, Any]]:
        self.svc.enforce(ctx, f"{P}:os-floating-ips:list")
        fips = self._net().list(ctx, "floatingips", {"project_id": [ctx.project_id or ""]}, "")["floatingips"]
        return self._nova_fips(ctx, fips)

    def floating_ip(self, ctx: RequestContext, fip_id: str) -> dict[str, Any]:
        self.svc.enforce(ctx, f"{P}:os-floating-ips:show")
        try:
            fip = self._net().show(ctx, "floatingips", fip_id)
        except errors.NotFound:
            raise errors.NotFound(f"Floating IP not found for ID {fip_id}") from None
        return self._nova_fips(ctx, [fip])[0]

    def _nova_fips(self, ctx: RequestContext, fips: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pools = {n["id"]: n["name"] for n in self._net().list_networks(ctx, {"router:external": True})}
        out = []
        for f in fips:
            details = f.get("port_details") or {}
            instance = details.get("device_id") if str(details.get("device_owner", "")).startswith("compute:") else None
            out.append({"id": f["id"], "ip": f["floating_ip_address"], "fixed_ip": f.get("fixed_ip_address"),
                        "instance_id": instance, "pool": pools.get(f["floating_network_id"])})
        return out
