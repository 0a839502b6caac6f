"""Networks: visibility (own, shared, external), provider segments (local/flat/vlan/vxlan) allocated
race-free through a unique segment key, and deletion rules (NetworkInUse; DHCP ports go automatically)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network import dns, views
from tinystack.network.common import bad, check_bool, check_str, conflict, drop_tags, new_uuid, touch, unknown_attrs
from tinystack.network.models import Network, Port, Subnet, utcnow

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
ATTRS = ("name", "description", "admin_state_up", "shared", "router:external", "mtu", "port_security_enabled",
         "project_id", "tenant_id", "availability_zone_hints", "is_default", "dns_domain", *PROVIDER)
UPDATABLE = ("name", "description", "admin_state_up", "shared", "router:external", "mtu", "port_security_enabled",
             "is_default", "dns_domain", *PROVIDER)
AUTO_DELETE_OWNERS = ("network:dhcp",)
VXLAN_OVERHEAD = 50


def _segment_key(network_type: str, physnet: str | None, segid: int | None) -> str | None:
    return None if network_type == "local" else f"{network_type}:{physnet or ''}:{segid if segid is not None else ''}"


def _free_segment(s: Session, network_type: str, physnet: str | None, ranges: list[tuple[int, int]]) -> int:
    used = set(s.scalars(select(Network.segmentation_id).where(Network.network_type == network_type,
                                                              Network.physical_network == physnet
                                                              if physnet else Network.physical_network.is_(None))))
    for low, high in ranges:
        for segid in range(low, high + 1):
            if segid not in used:
                return segid
    raise conflict("Unable to create the network. No tenant network is available for allocation.",
                   "NoNetworkAvailable")


def _segment(svc: NetworkService, s: Session, attrs: dict[str, Any]) -> tuple[str, str | None, int | None, int]:
    """(network_type, physical_network, segmentation_id, mtu) for a new network."""
    cfg = svc.settings
    ntype = attrs.get("provider:network_type") or cfg.tenant_network_type
    physnet = attrs.get("provider:physical_network")
    segid = attrs.get("provider:segmentation_id")
    if ntype not in ("local", "flat", "vlan", "vxlan"):
        raise bad(f"Invalid input for operation: network_type value '{ntype}' not supported.", "InvalidInput")
    if segid is not None and (isinstance(segid, bool) or not isinstance(segid, int)):
        try:
            segid = int(segid)
        except (TypeError, ValueError):
            raise bad(f"Invalid input for provider:segmentation_id. Reason: '{segid}' is not an integer.") from None
    mtu = cfg.global_physnet_mtu
    if ntype == "local":
        if physnet or segid is not None:
            raise bad("Invalid input for operation: provider attributes are not allowed for local networks.",
                      "InvalidInput")
    elif ntype == "flat":
        if not physnet:
            physnet = cfg.public_physnet if "provider:network_type" in attrs else None
        if not physnet:
            raise bad("Invalid input for operation: physical_network required for flat provider network.",
                      "InvalidInput")
        if "*" not in cfg.flat_networks and physnet not in cfg.flat_networks:
            raise bad(f"Invalid input for operation: physical_network '{physnet}' unknown for flat provider network.",
                      "InvalidInput")
        if segid is not None:
            raise bad("Invalid input for operation: segmentation_id specified for flat provider network.",
                      "InvalidInput")
        if s.scalar(select(Network.id).where(Network.segment_key == _segment_key(ntype, physnet, None))):
            raise conflict(f"Unable to create the flat network. Physical network {physnet} is in use.",
                           "FlatNetworkInUse")
    elif ntype == "vlan":
        if not physnet:
            raise bad("Invalid input for operation: physical_network required for VLAN provider network.",
                      "InvalidInput")
        if segid is None:
            if physnet not in cfg.vlan_ranges:
                raise bad("Invalid input for operation: segmentation_id required for VLAN provider network.",
                          "InvalidInput")
            segid = _free_segment(s, ntype, physnet, [cfg.vlan_ranges[physnet]])
        if not 1 <= segid <= 4094:
            raise bad("Invalid input for operation: segmentation_id out of range (1 through 4094).", "InvalidInput")
        if s.scalar(select(Network.id).where(Network.segment_key == _segment_key(ntype, physnet, segid))):
            raise conflict(f"Unable to create the network. The VLAN {segid} on physical network {physnet} is in use.",
                           "VlanIdInUse")
    else:
        if physnet:
            raise bad("Invalid input for operation: physical_network not allowed for vxlan networks.", "InvalidInput")
        if segid is None:
            segid = _free_segment(s, ntype, None, list(cfg.vni_ranges))
        elif not 1 <= segid <= 2**24 - 1:
            raise bad(f"Invalid input for operation: segmentation_id {segid} out of range.", "InvalidInput")
        elif s.scalar(select(Network.id).where(Network.segment_key == _segment_key(ntype, None, segid))):
            raise conflict(f"Unable to create the network. The tunnel ID {segid} is in use.", "TunnelIdInUse")
        mtu -= VXLAN_OVERHEAD
    return ntype, physnet, segid, mtu


class Networks:
    singular = "network"
    plural = "networks"
    quota: str | None = "network"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        q = select(Network)
        if ident is not None:
            q = q.where(Network.id == ident)
        if not ctx.is_admin:
            q = q.where(or_(Network.project_id == ctx.project_id, Network.shared.is_(True), Network.external.is_(True)))
        return list(s.scalars(q))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return views.networks(svc, s, ctx, rows)

    def _validate(self, svc: NetworkService, ctx: RequestContext, attrs: dict[str, Any], action: str,
                  allowed: tuple[str, ...], target: dict[str, Any]) -> None:
        unknown_attrs(attrs, allowed)
        check_str(attrs, "name", "description", "dns_domain")
        check_bool(attrs, "admin_state_up", "shared", "router:external", "port_security_enabled", "is_default")
        if "mtu" in attrs and (not isinstance(attrs["mtu"], int) or isinstance(attrs["mtu"], bool)
                               or not 68 <= attrs["mtu"] <= 65535):
            raise bad(f"Invalid input for mtu. Reason: '{attrs['mtu']}' is not a valid MTU.")
        svc.enforce_attrs(ctx, action, attrs, target, ("shared", "router:external", "is_default", *PROVIDER))
        if "dns_domain" in attrs:
            attrs["dns_domain"] = dns.check_domain(attrs["dns_domain"])

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        project = svc.owner(ctx, attrs)
        target = {"project_id": project}
        svc.enforce(ctx, "create_network", target)
        self._validate(svc, ctx, attrs, "create_network", ATTRS, target)
        svc.check_quota(s, "network", project, Network)
        ntype, physnet, segid, mtu = _segment(svc, s, attrs)
        if "mtu" in attrs:
            if attrs["mtu"] > mtu:
                raise bad(f"Requested MTU is too big, maximum is {mtu}", "InvalidInput")
            mtu = attrs["mtu"]
        net = Network(id=new_uuid(), project_id=project, name=attrs.get("name", ""),
                      description=attrs.get("description", ""), admin_state_up=attrs.get("admin_state_up", True),
                      shared=attrs.get("shared", False), external=attrs.get("router:external", False),
                      is_default=attrs.get("is_default", False), mtu=mtu,
                      port_security_enabled=attrs.get("port_security_enabled", True), network_type=ntype,
                      physical_network=physnet, segmentation_id=segid,
                      segment_key=_segment_key(ntype, physnet, segid),
                      availability_zone_hints=list(attrs.get("availability_zone_hints") or []),
                      dns_domain=attrs.get("dns_domain", ""))
        s.add(net)
        s.flush()
        changes.add(("network", net.id))
        return net.id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Network, attrs: dict[str, Any],
               changes: Changes) -> None:
        target = {"project_id": row.project_id}
        svc.enforce(ctx, "update_network", target)
        self._validate(svc, ctx, attrs, "update_network", UPDATABLE, target)
        for name in PROVIDER:
            if name in attrs and attrs[name] != {"provider:network_type": row.network_type,
                                                 "provider:physical_network": row.physical_network,
                                                 "provider:segmentation_id": row.segmentation_id}[name]:
                raise bad("Invalid input for operation: plugin does not support updating provider attributes.",
                          "InvalidInput")
        if attrs.get("shared") is False and row.shared:
            others = s.scalar(select(Port.id).where(Port.network_id == row.id, Port.project_id != row.project_id,
                                                    Port.device_owner.notlike("network:%")).limit(1))
            if others:
                raise conflict(f"Unable to reconfigure sharing settings for network {row.id}. Multiple tenants are "
                               "using it.", "InvalidSharedSetting")
        gateways = select(Port.id).where(Port.network_id == row.id, Port.device_owner.in_(
            ("network:router_gateway", "network:floatingip"))).limit(1)
        if attrs.get("router:external") is False and row.external and s.scalar(gateways):
            raise conflict(f"External network {row.id} cannot be updated to be non-external, since it has "
                           "existing gateway ports.", "ExternalNetworkInUse")
        simple = {"name": "name", "description": "description", "admin_state_up": "admin_state_up",
                  "shared": "shared", "router:external": "external", "port_security_enabled": "port_security_enabled",
                  "is_default": "is_default", "mtu": "mtu", "dns_domain": "dns_domain"}
        for key, column in simple.items():
            if key in attrs:
                setattr(row, column, attrs[key])
        touch(row)
        changes.add(("network", row.id))

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Network, changes: Changes) -> None:
        svc.enforce(ctx, "delete_network", {"project_id": row.project_id})
        owners = list(s.scalars(select(Port.device_owner).where(Port.network_id == row.id)))
        if any(o not in AUTO_DELETE_OWNERS for o in owners):
            raise conflict(f"Unable to complete operation on network {row.id}. There are one or more ports still "
                           "in use on the network.", "NetworkInUse")
        for port_id in s.scalars(select(Port.id).where(Port.network_id == row.id)):
            drop_tags(s, port_id)
            changes.add(("port", port_id))
        for subnet_id in s.scalars(select(Subnet.id).where(Subnet.network_id == row.id)):
            drop_tags(s, subnet_id)
        s.execute(delete(Port).where(Port.network_id == row.id))
        s.execute(delete(Subnet).where(Subnet.network_id == row.id))
        drop_tags(s, row.id)
        s.delete(row)
        row.updated_at = utcnow()
        changes.add(("network", row.id))

