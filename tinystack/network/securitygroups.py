"""Security groups and rules: the per-project ``default`` group made on first use (ingress only from its
members, all egress), rule validation (protocol, ports, ICMP type/code, prefixes, remote groups) and
duplicate detection."""

from __future__ import annotations

import contextlib
import ipaddress
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network import views
from tinystack.network.common import bad, check_str, conflict, drop_tags, new_uuid, not_found, touch, unknown_attrs
from tinystack.network.models import DefaultSecurityGroup, PortSecurityGroup, SecurityGroup, SecurityGroupRule

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2,
             "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
             "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
             "udplite": 136, "vrrp": 112}
PORTED = {6, 17, 33, 132, 136}
ICMP = {1, 58}
RULE_ATTRS = ("security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
              "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "description", "project_id",
              "tenant_id")


def protocol_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    return PROTOCOLS[protocol] if protocol in PROTOCOLS else int(protocol)


def _add_rule(s: Session, sg: SecurityGroup, direction: str, ethertype: str, remote_group: str | None = None) -> None:
    s.add(SecurityGroupRule(id=new_uuid(), project_id=sg.project_id, security_group_id=sg.id, direction=direction,
                            ethertype=ethertype, remote_group_id=remote_group))


def _new_group(s: Session, project: str, name: str, description: str) -> SecurityGroup:
    sg = SecurityGroup(id=new_uuid(), project_id=project, name=name, description=description)
    s.add(sg)
    s.flush()
    for ethertype in ("IPv4", "IPv6"):
        _add_rule(s, sg, "egress", ethertype)
    return sg


def ensure_default(svc: NetworkService, s: Session, project: str, changes: Changes) -> str:
    """The project's default group, created on first use. A concurrent creator makes the insert of the
    ``network_default_security_groups`` row fail, and the caller's transaction is retried."""
    existing = s.get(DefaultSecurityGroup, project)
    if existing is not None:
        return existing.security_group_id
    sg = _new_group(s, project, "default", "Default security group")
    for ethertype in ("IPv4", "IPv6"):
        _add_rule(s, sg, "ingress", ethertype, sg.id)
    s.add(DefaultSecurityGroup(project_id=project, security_group_id=sg.id))
    s.flush()
    return sg.id


def ensure_default_now(svc: NetworkService, project: str | None) -> None:
    if not project:
        return
    with svc.session() as s:
        if s.get(DefaultSecurityGroup, project) is not None:
            return
    with contextlib.suppress(IntegrityError):
        svc.transact(lambda s, changes: ensure_default(svc, s, project, changes))


class SecurityGroups:
    singular = "security_group"
    plural = "security_groups"
    quota: str | None = "security_group"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        q = select(SecurityGroup)
        if ident is not None:
            q = q.where(SecurityGroup.id == ident)
        if not ctx.is_admin:
            q = q.where(SecurityGroup.project_id == ctx.project_id)
        return list(s.scalars(q))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return views.security_groups(svc, s, ctx, rows)

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, ("name", "description", "project_id", "tenant_id", "stateful"))
        check_str(attrs, "name", "description")
        project = svc.owner(ctx, attrs)
        svc.enforce(ctx, "create_security_group", {"project_id": project})
        ensure_default(svc, s, project, changes)
        if attrs.get("name") == "default":
            raise conflict("Default security group already exists.", "SecurityGroupDefaultAlreadyExists")
        svc.check_quota(s, "security_group", project, SecurityGroup)
        sg = _new_group(s, project, attrs.get("name", ""), attrs.get("description", ""))
        return sg.id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: SecurityGroup, attrs: dict[str, Any],
               changes: Changes) -> None:
        unknown_attrs(attrs, ("name", "description", "stateful"))
        check_str(attrs, "name", "description")
        svc.enforce(ctx, "update_security_group", {"project_id": row.project_id})
        if row.name == "default" and attrs.get("name", "default") != "default":
            raise conflict("Updating default security group not allowed.", "SecurityGroupCannotUpdateDefault")
        if attrs.get("name") == "default" and row.name != "default":
            raise conflict("Default security group already exists.", "SecurityGroupDefaultAlreadyExists")
        for key in ("name", "description"):
            if key in attrs:
                setattr(row, key, attrs[key])
        touch(row)

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: SecurityGroup,
               changes: Changes) -> None:
        svc.enforce(ctx, "delete_security_group", {"project_id": row.project_id})
        if s.get(DefaultSecurityGroup, row.project_id) is not None and row.name == "default" and not ctx.is_admin:
            raise conflict("Insufficient rights for removing default security group.",
                           "SecurityGroupCannotRemoveDefault")
        if s.scalar(select(PortSecurityGroup.port_id).where(PortSecurityGroup.security_group_id == row.id).limit(1)):
            raise conflict(f"Security Group {row.id} in use.", "SecurityGroupInUse")
        for rule_id in s.scalars(select(SecurityGroupRule.id).where(SecurityGroupRule.security_group_id == row.id)):
            drop_tags(s, rule_id)
        referring = set(s.scalars(select(SecurityGroupRule.security_group_id)
                                  .where(SecurityGroupRule.remote_group_id == row.id)))
        for sg in referring:
            changes.add(("sg", sg))
        drop_tags(s, row.id)
        s.delete(row)


def _port(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad(f"Invalid value for port {value}.", "SecurityGroupInvalidPortValue") from None
    if isinstance(value, bool) or not 0 <= number <= 65535:
        raise bad(f"Invalid value for port {value}.", "SecurityGroupInvalidPortValue")
    return number


def _protocol(value: Any) -> str | None:
    if value is None or value == "" or (isinstance(value, str) and value.lower() == "any"):
        return None
    text = str(value).lower()
    if text in PROTOCOLS:
        return text
    if text.isdigit() and 0 <= int(text) <= 255:
        return text
    raise bad(f"Security group rule protocol {value} not supported. Only protocol values {sorted(PROTOCOLS)} and "
              "integer representations [0 to 255] are supported.", "SecurityGroupRuleInvalidProtocol")


class SecurityGroupRules:
    singular = "security_group_rule"
    plural = "security_group_rules"
    quota: str | None = "security_group_rule"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        q = select(SecurityGroupRule)
        if ident is not None:
            q = q.where(SecurityGroupRule.id == ident)
        if not ctx.is_admin:
            own = select(SecurityGroup.id).where(SecurityGroup.project_id == ctx.project_id)
            q = q.where(SecurityGroupRule.security_group_id.in_(own))
        return list(s.scalars(q))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return views.security_group_rules(svc, s, ctx, rows)

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, RULE_ATTRS)
        check_str(attrs, "description")
        sg_id = attrs.get("security_group_id")
        groups = SecurityGroups().visible(svc, s, ctx, sg_id) if isinstance(sg_id, str) else []
        if not groups:
            raise not_found("security_group", str(sg_id))
        sg: SecurityGroup = groups[0]
        project = svc.owner(ctx, attrs) if ("project_id" in attrs or "tenant_id" in attrs) else sg.project_id
        svc.enforce(ctx, "create_security_group_rule", {"project_id": sg.project_id})
        direction = attrs.get("direction")
        if direction not in ("ingress", "egress"):
            raise bad(f"Invalid input for direction. Reason: '{direction}' is not in ['ingress', 'egress'].")
        ethertype = attrs.get("ethertype") or "IPv4"
        ethertype = {"ipv4": "IPv4", "ipv6": "IPv6"}.get(str(ethertype).lower(), ethertype)
        if ethertype not in ("IPv4", "IPv6"):
            raise bad(f"Invalid input for ethertype. Reason: '{attrs.get('ethertype')}' is not in ['IPv4', 'IPv6'].")
        protocol = _protocol(attrs.get("protocol"))
        if protocol == "icmp" and ethertype == "IPv6":
            protocol = "ipv6-icmp"
        number = protocol_number(protocol)
        low, high = _port(attrs.get("port_range_min"), "min"), _port(attrs.get("port_range_max"), "max")
        if number in PORTED:
            if (low is None) != (high is None) and low is None:
                raise bad("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                          "SecurityGroupInvalidPortRange")
            if low is not None and (low < 1 or (high if high is not None else low) < low):
                raise bad("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                          "SecurityGroupInvalidPortRange")
            if low is not None and high is None:
                high = low
        elif number in ICMP:
            if low is not None and low > 255:
                raise bad(f"Invalid value for ICMP type {low}: must be 0-255.", "SecurityGroupInvalidIcmpValue")
            if high is not None and high > 255:
                raise bad(f"Invalid value for ICMP code {high}: must be 0-255.", "SecurityGroupInvalidIcmpValue")
            if high is not None and low is None:
                raise bad(f"ICMP code (port-range-max) {high} is provided but ICMP type (port-range-min) is missing.",
                          "SecurityGroupMissingIcmpType")
        elif low is not None or high is not None:
            raise bad("Invalid protocol for port range: ports may be given only for TCP, UDP, DCCP, SCTP and "
                      "UDP-Lite (or ICMP type/code).", "SecurityGroupInvalidProtocolForPortRange")
        prefix, remote = attrs.get("remote_ip_prefix"), attrs.get("remote_group_id")
        if prefix is not None and remote is not None:
            raise bad("Only remote_ip_prefix or remote_group_id may be provided.", "SecurityGroupRemoteGroupAndRemoteIpPrefix")
        if prefix is not None:
            try:
                net = ipaddress.ip_network(prefix, strict=False)
            except (ValueError, TypeError):
                raise bad(f"Invalid input for remote_ip_prefix. Reason: '{prefix}' is not a valid IP subnet.") from None
            if f"IPv{net.version}" != ethertype:
                raise bad(f"Conflicting value ethertype {ethertype} for CIDR {prefix}", "SecurityGroupConflictingEthertype")
            prefix = str(net)
        if remote is not None and not SecurityGroups().visible(svc, s, ctx, remote):
            raise not_found("security_group", str(remote))
        svc.check_quota(s, "security_group_rule", project, SecurityGroupRule)
        key = (direction, ethertype, number, low, high, prefix, remote)
        for r in s.scalars(select(SecurityGroupRule).where(SecurityGroupRule.security_group_id == sg.id)):
            if (r.direction, r.ethertype, protocol_number(r.protocol), r.port_range_min, r.port_range_max,
                    r.remote_ip_prefix, r.remote_group_id) == key:
                raise conflict(f"Security group rule already exists. Rule id is {r.id}.", "SecurityGroupRuleExists")
        rule = SecurityGroupRule(id=new_uuid(), project_id=project, security_group_id=sg.id, direction=direction,
                                 ethertype=ethertype, protocol=protocol, port_range_min=low, port_range_max=high,
                                 remote_ip_prefix=prefix, remote_group_id=remote,
                                 description=attrs.get("description", ""))
        s.add(rule)
        touch(sg)
        s.flush()
        changes.add(("sg", sg.id))
        return rule.id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: SecurityGroupRule,
               attrs: dict[str, Any], changes: Changes) -> None:
        unknown_attrs(attrs, ("description",))
        check_str(attrs, "description")
        sg = s.get(SecurityGroup, row.security_group_id)
        svc.enforce(ctx, "update_security_group_rule", {"project_id": sg.project_id if sg else row.project_id})
        row.description = attrs.get("description", row.description)
        touch(row)

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: SecurityGroupRule,
               changes: Changes) -> None:
        sg = s.get(SecurityGroup, row.security_group_id)
        svc.enforce(ctx, "delete_security_group_rule", {"project_id": sg.project_id if sg else row.project_id})
        drop_tags(s, row.id)
        s.delete(row)
        if sg is not None:
            touch(sg)
        changes.add(("sg", row.security_group_id))
