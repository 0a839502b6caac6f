"""The read-mostly admin views: quotas (with usage details), agents fed by heartbeats, network IP
availability and availability zones."""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.network.common import bad, new_uuid, not_found
from tinystack.network.models import (
    Agent,
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    Quota,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    SubnetPool,
)
from tinystack.network.settings import QUOTA_RESOURCES

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

MODELS: dict[str, Any] = {"network": Network, "subnet": Subnet, "subnetpool": SubnetPool, "port": Port,
                          "router": Router, "floatingip": FloatingIP, "security_group": SecurityGroup,
                          "security_group_rule": SecurityGroupRule}
# One tinystack network agent does the work of Neutron's L2, DHCP, L3 and metadata agents; it is listed
# as each of them so that operators (and clients) find the agents they expect.
AGENT_TYPES = (("Linux bridge agent", "neutron-linuxbridge-agent", "N/A"),
               ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent"),
               ("L3 agent", "neutron-l3-agent", "l3_agent"),
               ("Metadata agent", "neutron-metadata-agent", "N/A"))


# --- quotas ------------------------------------------------------------------------------------


def quota(svc: NetworkService, s: Session, project_id: str) -> dict[str, int]:
    return {r: svc.quota_limit(s, project_id, r) for r in QUOTA_RESOURCES}


def show_quota(svc: NetworkService, ctx: RequestContext, project_id: str, details: bool = False) -> dict[str, Any]:
    svc.enforce(ctx, "get_quota", {"project_id": project_id})
    with svc.session() as s:
        limits = quota(svc, s, project_id)
        if not details:
            return limits
        out = {}
        for resource, limit in limits.items():
            model = MODELS[resource]
            used = s.scalar(select(func.count()).select_from(model).where(model.project_id == project_id)) or 0
            out[resource] = {"limit": limit, "used": used, "reserved": 0}
        return out


def default_quota(svc: NetworkService, ctx: RequestContext, project_id: str) -> dict[str, int]:
    svc.enforce(ctx, "get_quota", {"project_id": project_id})
    return dict(svc.settings.quotas)


def list_quotas(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized("(get_quota) is disallowed by policy", type="PolicyNotAuthorized")
    with svc.session() as s:
        projects = sorted(set(s.scalars(select(Quota.project_id))))
        return [{**quota(svc, s, p), "project_id": p, "tenant_id": p} for p in projects]


def update_quota(svc: NetworkService, ctx: RequestContext, project_id: str, body: Any) -> dict[str, int]:
    svc.enforce(ctx, "update_quota", {"project_id": project_id})
    if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
        raise bad("Resource body required; expected an object named 'quota'.")
    values: dict[str, int] = {}
    for key, value in body["quota"].items():
        if key not in QUOTA_RESOURCES:
            raise bad(f"Unrecognized attribute(s) '{key}'")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise bad(f"Invalid input for {key}. Reason: '{value}' is not an integer.") from None
        if number < -1:
            raise bad(f"Invalid input for {key}. Reason: '{value}' should be >= -1.")
        values[key] = number

    def do(s: Session, changes: Changes) -> None:
        for key, number in values.items():
            row = s.get(Quota, (project_id, key))
            if row is None:
                s.add(Quota(project_id=project_id, resource=key, limit=number))
            else:
                row.limit = number

    svc.transact(do)
    with svc.session() as s:
        return quota(svc, s, project_id)


def delete_quota(svc: NetworkService, ctx: RequestContext, project_id: str) -> None:
    svc.enforce(ctx, "delete_quota", {"project_id": project_id})
    svc.transact(lambda s, changes: s.execute(delete(Quota).where(Quota.project_id == project_id)))


# --- agents ------------------------------------------------------------------------------------


def record_heartbeat(svc: NetworkService, message: dict[str, Any]) -> bool:
    """Record a network agent's heartbeat; True when the host is new or came back after being down."""
    host = str(message.get("host") or "")
    if message.get("agent") != "network" or not host:
        return False
    stamp = float(message.get("time") or time.time())
    when = datetime.fromtimestamp(stamp, UTC).replace(tzinfo=None, microsecond=0)
    config = {k: v for k, v in message.items() if k not in ("agent", "host", "time", "binary")}

    def do(s: Session, changes: Changes) -> bool:
        revived = False
        for agent_type, binary, topic in AGENT_TYPES:
            row = s.scalar(select(Agent).where(Agent.agent_type == agent_type, Agent.host == host))
            if row is None:
                revived = True
                s.add(Agent(id=new_uuid(), agent_type=agent_type, binary=binary, topic=topic, host=host,
                            availability_zone="nova" if topic != "N/A" else None, configurations=config,
                            created_at=when, started_at=when, heartbeat_timestamp=when, heartbeat_epoch=stamp))
                continue
            if stamp - (row.heartbeat_epoch or 0) > svc.settings.agent_down_time:
                revived = True
            # Only a later heartbeat moves the row, decided by the database in the one statement: two API
            # processes recording heartbeats of one agent at once (or a delayed message) never move it back.
            down = svc.settings.agent_down_time
            s.execute(update(Agent).where(Agent.id == row.id, Agent.heartbeat_epoch < stamp)
                      .values(heartbeat_timestamp=when, heartbeat_epoch=stamp, configurations=config,
                              started_at=case((Agent.heartbeat_epoch < stamp - down, when), else_=Agent.started_at))
                      .execution_options(synchronize_session=False))
        return revived

    return svc.transact(do)


def alive(svc: NetworkService, row: Agent) -> bool:
    return time.time() - (row.heartbeat_epoch or 0) <= svc.settings.agent_down_time


def network_host(svc: NetworkService) -> str | None:
    """The host of the live, enabled network agent that most recently sent a heartbeat."""
    with svc.session() as s:
        row = s.scalar(select(Agent).where(Agent.agent_type == "L3 agent", Agent.admin_state_up.is_(True))
                       .order_by(Agent.heartbeat_epoch.desc()).limit(1))
        return row.host if row is not None and alive(svc, row) else None


def agent_view(svc: NetworkService, row: Agent) -> dict[str, Any]:
    return {"id": row.id, "agent_type": row.agent_type, "binary": row.binary, "topic": row.topic, "host": row.host,
            "admin_state_up": row.admin_state_up, "alive": alive(svc, row), "availability_zone": row.availability_zone,
            "description": row.description or None, "configurations": row.configurations or {},
            "created_at": _stamp(row.created_at), "started_at": _stamp(row.started_at),
            "heartbeat_timestamp": _stamp(row.heartbeat_timestamp), "resources_synced": None}


def _stamp(value: datetime | None) -> str | None:
    """Neutron renders agent times as ``2024-01-01 10:00:00``."""
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def list_agents(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    if not svc.allowed(ctx, "get_agent", {}):
        return []  # Neutron filters a list by policy: a member sees no agents rather than a 403
    with svc.session() as s:
        return [agent_view(svc, r) for r in s.scalars(select(Agent).order_by(Agent.host, Agent.agent_type))]


def show_agent(svc: NetworkService, ctx: RequestContext, agent_id: str) -> dict[str, Any]:
    svc.enforce(ctx, "get_agent", {})
    with svc.session() as s:
        row = s.get(Agent, agent_id)
        if row is None:
            raise not_found("agent", agent_id)
        return agent_view(svc, row)


def update_agent(svc: NetworkService, ctx: RequestContext, agent_id: str, body: Any) -> dict[str, Any]:
    svc.enforce(ctx, "update_agent", {})
    attrs = body.get("agent") if isinstance(body, dict) else None
    if not isinstance(attrs, dict) or not set(attrs) <= {"admin_state_up", "description"}:
        raise bad("Invalid input for agent: only admin_state_up and description may be updated.")
    if "admin_state_up" in attrs and not isinstance(attrs["admin_state_up"], bool):
        raise bad(f"Invalid input for admin_state_up. Reason: '{attrs['admin_state_up']}' is not a valid boolean.")

    def do(s: Session, changes: Changes) -> dict[str, Any]:
        row = s.get(Agent, agent_id)
        if row is None:
            raise not_found("agent", agent_id)
        for key in ("admin_state_up", "description"):
            if key in attrs:
                setattr(row, key, attrs[key] or ("" if key == "description" else attrs[key]))
        return agent_view(svc, row)

    return svc.transact(do)


def delete_agent(svc: NetworkService, ctx: RequestContext, agent_id: str) -> None:
    svc.enforce(ctx, "delete_agent", {})

    def do(s: Session, changes: Changes) -> None:
        row = s.get(Agent, agent_id)
        if row is None:
            raise not_found("agent", agent_id)
        s.delete(row)

    svc.transact(do)


# --- IP availability and availability zones ----------------------------------------------------


def ip_availability(svc: NetworkService, ctx: RequestContext, network_id: str | None = None) -> list[dict[str, Any]]:
    svc.enforce(ctx, "get_network_ip_availability", {})
    from tinystack.network.ipam import pool_size

    with svc.session() as s:
        q = select(Network)
        if network_id is not None:
            q = q.where(Network.id == network_id)
        nets = list(s.scalars(q))
        if network_id is not None and not nets:
            raise not_found("network", network_id)
        used = dict(s.execute(select(IPAllocation.subnet_id, func.count()).group_by(IPAllocation.subnet_id)).all())
        out = []
        for net in nets:
            subnets: list[dict[str, Any]] = []
            for sn in s.scalars(select(Subnet).where(Subnet.network_id == net.id)):
                total = pool_size(sn.allocation_pools) if sn.ip_version == 4 else ipaddress.ip_network(
                    sn.cidr).num_addresses
                subnets.append({"subnet_id": sn.id, "subnet_name": sn.name, "cidr": sn.cidr,
                                "ip_version": sn.ip_version, "total_ips": total, "used_ips": used.get(sn.id, 0)})
            out.append({"network_id": net.id, "network_name": net.name, "project_id": net.project_id,
                        "tenant_id": net.project_id, "subnet_ip_availability": subnets,
                        "total_ips": sum(int(x["total_ips"]) for x in subnets),
                        "used_ips": sum(int(x["used_ips"]) for x in subnets)})
        return out


def availability_zones() -> list[dict[str, str]]:
    return [{"name": "nova", "resource": "network", "state": "available"},
            {"name": "nova", "resource": "router", "state": "available"}]
