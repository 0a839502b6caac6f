"""Simple tenant usage (os-simple-tenant-usage): for a time window, each server that ran in it (deleted ones
too) with the hours it ran inside the window, and each project's totals of hours and of vCPU-, MiB- and
GiB-hours, as Nova computes them from launched_at and terminated_at."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import load_only

from tinystack.compute.models import Instance, utcnow
from tinystack.core import errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

RULE = "os_compute_api:os-simple-tenant-usage:{}"
# What Nova accepts for start and end; ISO 8601 with an offset is taken too, and turned into UTC.
_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def parse_time(raw: str | None, now: datetime) -> datetime:
    """A naive UTC datetime from a query value; a missing one is ``now``, as in Nova."""
    if not raw:
        return now
    for fmt in _FORMATS:
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            pass
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise errors.BadRequest(f"Invalid time {raw!r}: Datetime is in invalid format.") from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class Window:
    start: datetime
    stop: datetime

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> Window:
        now = utcnow()
        begin, stop = parse_time(start, now), parse_time(end, now)
        if not begin < stop:
            raise errors.BadRequest("Invalid start time. The start time cannot occur after the end time.")
        return cls(begin, min(stop, now))  # nothing is charged in the future


@dataclass
class ServerUsage:
    instance_id: str
    name: str
    tenant_id: str
    flavor: str
    vcpus: int
    memory_mb: int
    local_gb: int
    hours: float
    started_at: datetime
    ended_at: datetime | None
    state: str
    uptime: int


@dataclass
class ProjectUsage:
    tenant_id: str
    start: datetime
    stop: datetime
    total_hours: float = 0.0
    total_vcpus_usage: float = 0.0
    total_memory_mb_usage: float = 0.0
    total_local_gb_usage: float = 0.0
    server_usages: list[ServerUsage] = field(default_factory=list)


def hours_in(window: Window, launched: datetime, terminated: datetime | None) -> float:
    """Hours a server launched at ``launched`` (and gone at ``terminated``) ran inside ``window``."""
    if terminated is not None and terminated < window.start:
        return 0.0
    if launched > window.stop:
        return 0.0
    stop = min(window.stop, terminated) if terminated is not None else window.stop
    return max((stop - max(launched, window.start)).total_seconds(), 0.0) / 3600.0


def server_usage(inst: Instance, window: Window, now: datetime) -> ServerUsage:
    assert inst.launched_at is not None
    flavor: dict[str, Any] = inst.flavor or {}
    ended = inst.terminated_at
    return ServerUsage(
        instance_id=inst.id, name=inst.name, tenant_id=inst.project_id, flavor=str(flavor.get("name") or ""),
        vcpus=int(flavor.get("vcpus", 0)), memory_mb=int(flavor.get("memory_mb", 0)),
        local_gb=int(flavor.get("root_gb", 0)) + int(flavor.get("ephemeral_gb", 0)),
        hours=hours_in(window, inst.launched_at, ended), started_at=inst.launched_at, ended_at=ended,
        state="terminated" if ended is not None else inst.vm_state,
        uptime=int(((ended or now) - inst.launched_at).total_seconds()))


class Usage:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def report(self, ctx: RequestContext, window: Window, project_id: str | None, limit: int,
               marker: str | None) -> tuple[list[ProjectUsage], list[ServerUsage]]:
        """Usage per project (every project when ``project_id`` is None) over at most ``limit`` servers after
        ``marker``, oldest first; also every server counted, in order, for the next page's marker.

        Totals cover the servers of this page only, as in Nova: a client adds pages up."""
        if project_id is None:
            self.svc.enforce(ctx, RULE.format("list"), {})
        else:
            self.svc.enforce(ctx, RULE.format("show"), {"project_id": project_id})
        # Only the columns a usage line needs: an instance row also carries its documents, ports and user data.
        q = (select(Instance)
             .options(load_only(Instance.id, Instance.name, Instance.project_id, Instance.flavor,
                                Instance.launched_at, Instance.terminated_at, Instance.vm_state, Instance.created_at))
             .where(or_(Instance.terminated_at.is_(None), Instance.terminated_at > window.start),
                    Instance.launched_at.is_not(None), Instance.launched_at < window.stop)
             .order_by(Instance.created_at, Instance.id))
        if project_id is not None:
            q = q.where(Instance.project_id == project_id)
        now = utcnow()
        with self.svc.session() as s:
            if marker is not None:
                at = s.execute(select(Instance.created_at, Instance.id).where(Instance.id == marker)).first()
                if at is None:
                    raise errors.BadRequest(f"Marker {marker} could not be found.")
                q = q.where(or_(Instance.created_at > at[0], (Instance.created_at == at[0]) & (Instance.id > at[1])))
            servers = [server_usage(i, window, now) for i in s.scalars(q.limit(limit))] if limit else []
        projects: dict[str, ProjectUsage] = {}
        for u in servers:
            p = projects.setdefault(u.tenant_id, ProjectUsage(u.tenant_id, window.start, window.stop))
            p.total_hours += u.hours
            p.total_vcpus_usage += u.vcpus * u.hours
            p.total_memory_mb_usage += u.memory_mb * u.hours
            p.total_local_gb_usage += u.local_gb * u.hours
            p.server_usages.append(u)
        return list(projects.values()), servers
