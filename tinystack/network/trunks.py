"""Trunks (the ``trunk`` and ``trunk-details`` extensions): a parent port that carries other ports (subports)
as VLANs, so one guest NIC reaches several networks. Subports take the parent's binding host and the owner
``trunk:subport``; the network agent carries each one's VLAN between the parent's tap and the subport's network
(dataplane/subports.py). A trunk's status is derived from its ports' statuses, as the agent reports them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.network.common import (
    bad,
    check_bool,
    check_str,
    conflict,
    drop_tags,
    new_uuid,
    not_found,
    standard,
    tags_for,
    touch,
    unknown_attrs,
    visible_query,
)
from tinystack.network.models import Network, Port, SubPort, Trunk

if TYPE_CHECKING:
    from tinystack.network.service import Changes, NetworkService

ATTRS = ("name", "description", "port_id", "sub_ports", "admin_state_up", "project_id", "tenant_id")
UPDATABLE = ("name", "description", "admin_state_up")
SUBPORT_OWNER = "trunk:subport"
# segmentation type → the ids it allows (802.1Q: 0 and 4095 are reserved).
SEGMENTATION_TYPES = {"vlan": range(1, 4095)}


def _trunk_not_found(ident: str) -> Exception:
    return not_found("trunk", ident)


def _in_use_checks(s: Session, port: Port) -> None:
    """A port already in a trunk (as parent or subport) cannot join another one."""
    if s.get(SubPort, port.id) is not None:
        raise conflict(f"Port {port.id} is in use by another trunk.", "TrunkPortInUse")
    if s.scalar(select(Trunk.id).where(Trunk.port_id == port.id)) is not None:
        raise conflict(f"Port {port.id} is currently in use and is not eligible for use as a parent port.",
                       "ParentPortInUse")


def _parent(svc: NetworkService, s: Session, ctx: RequestContext, port_id: Any) -> Port:
    if not isinstance(port_id, str) or not port_id:
        raise bad("Failed to parse request. Required attribute 'port_id' not specified")
    rows = svc.resource("ports").visible(svc, s, ctx, port_id)
    if not rows:
        raise not_found("port", port_id)
    port: Port = rows[0]
    _in_use_checks(s, port)
    # This dataplane wires subports when the parent is bound; a parent already bound (a running guest's NIC,
    # a router's or DHCP port) is not eligible, as with Neutron drivers that cannot trunk a bound port.
    if port.host_id or port.device_owner.startswith("network:"):
        raise conflict(f"Port {port.id} is currently in use and is not eligible for use as a parent port.",
                       "ParentPortInUse")
    return port


def _segmentation_id(value: Any) -> int:
    if isinstance(value, bool):
        raise bad(f"Invalid input for operation: Invalid subport details: segmentation_id '{value}' is not an "
                  "integer.", "InvalidInput")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise bad(f"Invalid input for operation: Invalid subport details: segmentation_id '{value}' is not an "
              "integer.", "InvalidInput")


def parse_subports(value: Any, need_segmentation: bool = True) -> list[dict[str, Any]]:
    """The ``sub_ports`` list as the API takes it: objects with a port id (and, to add them, a known
    segmentation type and an id in its range), no port or segmentation twice."""
    if not isinstance(value, list):
        raise bad(f"Invalid input for sub_ports. Reason: Invalid data format for subports: '{value}' is not a "
                  "list.", "InvalidInput")
    out: list[dict[str, Any]] = []
    ports: set[str] = set()
    segments: set[tuple[str, int]] = set()
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("port_id"), str) or not item["port_id"]:
            raise bad(f"Invalid input for sub_ports. Reason: Invalid data format for subport: '{item}' has no "
                      "port_id.", "InvalidInput")
        allowed = {"port_id", "segmentation_type", "segmentation_id"}
        if set(item) - allowed:
            raise bad(f"Invalid input for sub_ports. Reason: unexpected keys {sorted(set(item) - allowed)} in "
                      f"subport '{item}'.", "InvalidInput")
        if item["port_id"] in ports:
            raise bad(f"Invalid input for sub_ports. Reason: duplicate port_id '{item['port_id']}' in subports.",
                      "InvalidInput")
        ports.add(item["port_id"])
        if not need_segmentation:
            out.append({"port_id": item["port_id"]})
            continue
        if "segmentation_type" not in item or "segmentation_id" not in item:
            raise bad(f"Invalid input for operation: Invalid subport details '{item}': missing segmentation "
                      "information. Must specify both segmentation_id and segmentation_type.", "InvalidInput")
        kind = item["segmentation_type"]
        if kind not in SEGMENTATION_TYPES:
            raise bad(f"Invalid input for operation: Unknown segmentation_type '{kind}'.", "InvalidInput")
        seg = _segmentation_id(item["segmentation_id"])
        if seg not in SEGMENTATION_TYPES[kind]:
            raise bad(f"Invalid input for operation: Segmentation ID '{seg}' is not in range.", "InvalidInput")
        if (kind, seg) in segments:
            raise bad(f"Invalid input for sub_ports. Reason: segmentation_type {kind} and segmentation_id {seg} "
                      "are given to more than one subport.", "InvalidInput")
        segments.add((kind, seg))
        out.append({"port_id": item["port_id"], "segmentation_type": kind, "segmentation_id": seg})
    return out


def _mtu(s: Session, port: Port) -> int | None:
    return s.scalar(select(Network.mtu).where(Network.id == port.network_id))


def _add(svc: NetworkService, s: Session, ctx: RequestContext, trunk: Trunk, parent: Port,
         subports: list[dict[str, Any]], changes: Changes) -> None:
    """Validate each subport as Neutron does and attach it: owner ``trunk:subport``, the parent's host."""
    parent_mtu = _mtu(s, parent)
    for sub in subports:
        if sub["port_id"] == parent.id:
            raise conflict(f"Port {parent.id} is currently in use and is not eligible for use as a parent port.",
                           "ParentPortInUse")
        rows = svc.resource("ports").visible(svc, s, ctx, sub["port_id"])
        if not rows:
            raise not_found("port", sub["port_id"])
        port: Port = rows[0]
        mtu = _mtu(s, port)
        if parent_mtu and mtu and mtu > parent_mtu:
            raise conflict(f"MTU {mtu} of subport {port.id} cannot be greater than MTU {parent_mtu} of trunk "
                           f"{trunk.id}.", "SubPortMtuGreaterThanTrunkPortMtu")
        _in_use_checks(s, port)
        if port.device_id or port.host_id:
            raise conflict(f"Unable to complete operation on port {port.id} for network {port.network_id}. Port "
                           f"already has an attached device {port.device_id or port.host_id}.", "PortInUse")
        taken = s.scalar(select(SubPort.port_id).where(SubPort.trunk_id == trunk.id,
                                                       SubPort.segmentation_type == sub["segmentation_type"],
                                                       SubPort.segmentation_id == sub["segmentation_id"]))
        if taken is not None:
            raise conflict(f"segmentation_type {sub['segmentation_type']} and segmentation_id "
                           f"{sub['segmentation_id']} already in use on trunk {trunk.id}.", "DuplicateSubPort")
        s.add(SubPort(port_id=port.id, trunk_id=trunk.id, segmentation_type=sub["segmentation_type"],
                      segmentation_id=sub["segmentation_id"]))
        port.device_owner, port.device_id, port.host_id = SUBPORT_OWNER, trunk.id, parent.host_id
        port.status = "DOWN"
        touch(port)
        _port_changed(port, changes)
        s.flush()


def _detach(s: Session, port: Port | None, changes: Changes) -> None:
    if port is None:
        return
    port.device_owner = port.device_id = port.host_id = ""
    port.binding_profile = {}
    port.status = "DOWN"
    touch(port)
    _port_changed(port, changes)


def _port_changed(port: Port, changes: Changes) -> None:
    changes.add(("port", port.id))
    changes.add(("network", port.network_id))


def follow_parent(s: Session, parent: Port, changes: Changes) -> None:
    """The parent's binding host changed (a guest booted on it, moved or went): its subports follow, as
    Neutron's trunk drivers bind them to the parent's host."""
    trunk_id = s.scalar(select(Trunk.id).where(Trunk.port_id == parent.id))
    if trunk_id is None:
        return
    for sub in s.scalars(select(Port).join(SubPort, SubPort.port_id == Port.id).where(SubPort.trunk_id == trunk_id)):
        if sub.host_id != parent.host_id or sub.binding_profile != parent.binding_profile:
            sub.host_id = parent.host_id
            # A live migration under way (``migrating_to``) wires the subports at the destination too.
            sub.binding_profile = dict(parent.binding_profile or {})
            sub.status = "DOWN"
            _port_changed(sub, changes)


def refuse_port_delete(s: Session, port: Port) -> None:
    """A port in a trunk cannot be deleted (Neutron's port deletion rules)."""
    sub = s.get(SubPort, port.id)
    if sub is not None:
        raise conflict(f"Port {port.id} is currently a subport for trunk {sub.trunk_id}.", "PortInUseAsSubPort")
    trunk_id = s.scalar(select(Trunk.id).where(Trunk.port_id == port.id))
    if trunk_id is not None:
        raise conflict(f"Port {port.id} is currently a parent port for trunk {trunk_id}.", "PortInUseAsTrunkParent")


def status(parent: Port | None, subports: list[Port]) -> str:
    """Neutron's trunk status from what the agent reported: DOWN while the parent is not bound, BUILD while
    it or a subport is being wired, ACTIVE when all are, DEGRADED when a subport failed, ERROR when the
    parent did."""
    if parent is None or not parent.host_id:
        return "DOWN"
    if parent.status == "ERROR":
        return "ERROR"
    if any(p.status == "ERROR" for p in subports):
        return "DEGRADED"
    if parent.status == "ACTIVE" and all(p.status == "ACTIVE" for p in subports):
        return "ACTIVE"
    return "BUILD"


def details(s: Session, parent_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``trunk_details`` of the ports among ``parent_ids`` that are trunk parents (the trunk-details
    extension): the trunk id and each subport with its segmentation and MAC address."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(parent_ids), 500):
        for trunk in s.scalars(select(Trunk).where(Trunk.port_id.in_(parent_ids[i:i + 500]))):
            out[trunk.port_id] = {"trunk_id": trunk.id, "sub_ports": []}
    by_trunk = {d["trunk_id"]: d for d in out.values()}
    if by_trunk:
        rows = s.execute(select(SubPort, Port.mac_address).join(Port, Port.id == SubPort.port_id)
                         .where(SubPort.trunk_id.in_(list(by_trunk))).order_by(SubPort.segmentation_id))
        for sub, mac in rows:
            by_trunk[sub.trunk_id]["sub_ports"].append(
                {"segmentation_id": sub.segmentation_id, "segmentation_type": sub.segmentation_type,
                 "port_id": sub.port_id, "mac_address": mac})
    return out


def vlans(s: Session, port_ids: list[str]) -> dict[str, dict[str, Any]]:
    """For each subport among ``port_ids``: its parent port and VLAN (what the agent's device needs)."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(port_ids), 500):
        rows = s.execute(select(SubPort, Trunk.port_id).join(Trunk, Trunk.id == SubPort.trunk_id)
                         .where(SubPort.port_id.in_(port_ids[i:i + 500])))
        for sub, parent in rows:
            out[sub.port_id] = {"parent_id": parent, "segmentation_type": sub.segmentation_type,
                                "segmentation_id": sub.segmentation_id}
    return out


class Trunks:
    singular = "trunk"
    plural = "trunks"
    quota: str | None = None

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        # Neutron's get_trunk rule (the owner or an admin by default) also decides, so a policy file applies.
        rows = s.scalars(visible_query(Trunk, ctx, ident))
        return [r for r in rows if svc.allowed(ctx, "get_trunk", {"project_id": r.project_id})]

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        ids = [r.id for r in rows]
        tags = tags_for(s, ids)
        subs: dict[str, list[SubPort]] = {}
        for i in range(0, len(ids), 500):
            for sub in s.scalars(select(SubPort).where(SubPort.trunk_id.in_(ids[i:i + 500]))
                                 .order_by(SubPort.segmentation_id)):
                subs.setdefault(sub.trunk_id, []).append(sub)
        port_ids = [r.port_id for r in rows] + [sp.port_id for group in subs.values() for sp in group]
        ports: dict[str, Port] = {}
        for i in range(0, len(port_ids), 500):
            ports.update({p.id: p for p in s.scalars(select(Port).where(Port.id.in_(port_ids[i:i + 500])))})
        out = []
        for r in rows:
            mine = subs.get(r.id, [])
            out.append({"id": r.id, "name": r.name, "project_id": r.project_id, "tenant_id": r.project_id,
                        "port_id": r.port_id, "admin_state_up": r.admin_state_up,
                        "status": status(ports.get(r.port_id), [ports[sp.port_id] for sp in mine if sp.port_id in ports]),
                        "sub_ports": [render_subport(sp) for sp in mine], **standard(r, tags)})
        return out

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, ATTRS)
        check_str(attrs, "name", "description")
        check_bool(attrs, "admin_state_up")
        project = svc.owner(ctx, attrs)
        svc.enforce(ctx, "create_trunk", {"project_id": project})
        subports = parse_subports(attrs.get("sub_ports") or [])
        parent = _parent(svc, s, ctx, attrs.get("port_id"))
        trunk = Trunk(id=new_uuid(), project_id=project, name=attrs.get("name", ""),
                      description=attrs.get("description", ""), admin_state_up=attrs.get("admin_state_up", True),
                      port_id=parent.id)
        s.add(trunk)
        s.flush()
        _add(svc, s, ctx, trunk, parent, subports, changes)
        _port_changed(parent, changes)
        return trunk.id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Trunk, attrs: dict[str, Any],
               changes: Changes) -> None:
        unknown_attrs(attrs, UPDATABLE)
        check_str(attrs, "name", "description")
        check_bool(attrs, "admin_state_up")
        svc.enforce(ctx, "update_trunk", {"project_id": row.project_id})
        for key in UPDATABLE:
            if key in attrs:
                setattr(row, key, attrs[key])
        touch(row)

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Trunk, changes: Changes) -> None:
        svc.enforce(ctx, "delete_trunk", {"project_id": row.project_id})
        _manageable(row)
        parent = s.get(Port, row.port_id)
        if parent is not None and parent.host_id:
            raise conflict(f"Trunk {row.id} is currently in use.", "TrunkInUse")
        for sub in list(s.scalars(select(SubPort).where(SubPort.trunk_id == row.id))):
            _detach(s, s.get(Port, sub.port_id), changes)
            s.delete(sub)
        if parent is not None:
            _port_changed(parent, changes)
        drop_tags(s, row.id)
        s.flush()
        s.delete(row)


def render_subport(sp: SubPort) -> dict[str, Any]:
    return {"port_id": sp.port_id, "segmentation_type": sp.segmentation_type, "segmentation_id": sp.segmentation_id}


def _manageable(trunk: Trunk) -> None:
    if not trunk.admin_state_up:
        raise conflict(f"Trunk {trunk.id} is currently disabled.", "TrunkDisabled")


def _not_in_error(s: Session, trunk: Trunk, parent: Port | None) -> None:
    """Neutron refuses subport changes on a trunk in ERROR until the error is resolved."""
    subs = list(s.scalars(select(Port).join(SubPort, SubPort.port_id == Port.id).where(SubPort.trunk_id == trunk.id)))
    if status(parent, subs) == "ERROR":
        raise conflict(f"Trunk {trunk.id} is in error state. Attempt to resolve the error condition before "
                       "proceeding.", "TrunkInErrorState")


def _sub_ports_body(body: Any) -> Any:
    if not isinstance(body, dict) or "sub_ports" not in body:
        raise bad("Invalid input for operation: a 'sub_ports' list is required.", "InvalidInput")
    return body["sub_ports"]


def _action_target(svc: NetworkService, s: Session, ctx: RequestContext, trunk_id: str, rule: str) -> Trunk:
    trunk: Trunk = svc.find(s, ctx, "trunks", trunk_id)
    svc.enforce(ctx, rule, {"project_id": trunk.project_id})
    return trunk


def add_subports(svc: NetworkService, ctx: RequestContext, trunk_id: str, body: Any) -> dict[str, Any]:
    """``PUT /v2.0/trunks/{id}/add_subports``: the trunk as it is afterwards (unwrapped, as Neutron answers)."""
    subports = parse_subports(_sub_ports_body(body))

    def do(s: Session, changes: Changes) -> None:
        trunk = _action_target(svc, s, ctx, trunk_id, "add_subports")
        _manageable(trunk)
        parent = s.get(Port, trunk.port_id)
        if parent is None:
            raise _trunk_not_found(trunk_id)
        _not_in_error(s, trunk, parent)
        _add(svc, s, ctx, trunk, parent, subports, changes)
        touch(trunk)
        _port_changed(parent, changes)

    svc.transact(do)
    return svc.show(ctx, "trunks", trunk_id)


def remove_subports(svc: NetworkService, ctx: RequestContext, trunk_id: str, body: Any) -> dict[str, Any]:
    """``PUT /v2.0/trunks/{id}/remove_subports``: every named port must be a subport of this trunk."""
    subports = parse_subports(_sub_ports_body(body), need_segmentation=False)

    def do(s: Session, changes: Changes) -> None:
        trunk = _action_target(svc, s, ctx, trunk_id, "remove_subports")
        _manageable(trunk)
        _not_in_error(s, trunk, s.get(Port, trunk.port_id))
        for item in subports:
            sub = s.get(SubPort, item["port_id"])
            if sub is None or sub.trunk_id != trunk.id:
                raise not_found_subport(trunk, item["port_id"])
            _detach(s, s.get(Port, sub.port_id), changes)
            s.delete(sub)
        touch(trunk)
        parent = s.get(Port, trunk.port_id)
        if parent is not None:
            _port_changed(parent, changes)

    svc.transact(do)
    return svc.show(ctx, "trunks", trunk_id)


def not_found_subport(trunk: Trunk, port_id: str) -> Exception:
    return errors.NotFound(f"SubPort on trunk {trunk.id} with parent port {port_id} could not be found.",
                           type="SubPortNotFound")


def get_subports(svc: NetworkService, ctx: RequestContext, trunk_id: str) -> dict[str, Any]:
    """``GET /v2.0/trunks/{id}/get_subports``."""
    with svc.session() as s:
        trunk = _action_target(svc, s, ctx, trunk_id, "get_subports")
        rows = s.scalars(select(SubPort).where(SubPort.trunk_id == trunk.id).order_by(SubPort.segmentation_id))
        return {"sub_ports": [render_subport(sp) for sp in rows]}
