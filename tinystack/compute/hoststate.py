"""The scheduler's ``HostStateSource`` over compute's tables (nodes, services, aggregates), and the
``RequestSpec`` the conductor builds for a server."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from tinystack.compute import aggregates
from tinystack.compute.models import Aggregate, AggregateHost, ComputeNode, Instance, ServerGroup, Service
from tinystack.compute.scheduler import Aggregate as SchedAggregate
from tinystack.compute.scheduler import Flavor, HostState, RequestSpec
from tinystack.compute.scheduler import ServerGroup as SchedGroup
from tinystack.compute.volumes import volume_backed
from tinystack.placement.interface import PLACEMENT

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

# Bumped after every commit that changes what ``hosts()`` answers: the scheduler re-reads host states then,
# instead of on every request. Writers in other processes are seen on the scheduler's refresh interval.
_counter = itertools.count(1)
_revision = 0
_PENDING = "compute.hoststate.changed"
# Service columns that matter to the scheduler (heartbeats change the others all the time).
_SERVICE_FIELDS = ("host", "binary", "disabled", "forced_down")


_TRACKED = (Aggregate, AggregateHost, ComputeNode, Service)


def _changes_hosts(obj: Any) -> bool:
    """Whether a changed row (not a new or deleted one) alters some host state."""
    if isinstance(obj, ComputeNode):
        fields: tuple[str, ...] = ("hypervisor_type", "cpu_info")
    elif isinstance(obj, Service):
        fields = _SERVICE_FIELDS
    else:
        return isinstance(obj, (Aggregate, AggregateHost))
    state = inspect(obj)
    return any(state.attrs[f].history.has_changes() for f in fields)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _ctx: Any) -> None:
    if session.info.get(_PENDING):
        return
    if (any(isinstance(o, _TRACKED) for o in itertools.chain(session.new, session.deleted))
            or any(_changes_hosts(o) for o in session.dirty)):
        session.info[_PENDING] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    global _revision
    if session.info.pop(_PENDING, False):
        _revision = next(_counter)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def changed() -> None:
    """Tell schedulers that host states changed through a write the ORM events do not see (Core statements)."""
    global _revision
    _revision = next(_counter)


class DatabaseHostStates:
    """Every compute node with a placement provider, with its service's up/enabled state and aggregates."""

    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def revision(self) -> int:
        return _revision

    def hosts(self) -> list[HostState]:
        with self.svc.session() as s:
            nodes = list(s.scalars(select(ComputeNode)).all())
            services = {r.host: r for r in s.scalars(select(Service).where(Service.binary == "nova-compute"))}
            aggs = aggregates.load_all(s)
        rps = self.svc.service(PLACEMENT).provider_uuids()
        default_az = self.svc.settings.default_availability_zone
        by_host: dict[str, list[SchedAggregate]] = {}
        for a in aggs:
            for h in a.hosts:
                by_host.setdefault(h, []).append(SchedAggregate(a.uuid, a.name, a.metadata))
        out = []
        for node in nodes:
            rp = rps.get(node.host)
            row = services.get(node.host)
            if rp is None or row is None:
                continue
            mine = tuple(by_host.get(node.host, ()))
            az = next((a.metadata[aggregates.AZ] for a in mine if a.metadata.get(aggregates.AZ)), default_az)
            arch = (node.cpu_info or {}).get("arch", "x86_64") if isinstance(node.cpu_info, dict) else "x86_64"
            out.append(HostState(host=node.host, rp_uuid=rp, availability_zone=az, aggregates=mine,
                                 enabled=not row.disabled, up=self.svc.admin.is_up(row),
                                 hypervisor_type=node.hypervisor_type, architecture=arch))
        return out


def scheduler_for(svc: ComputeService) -> Any:
    from tinystack.compute.scheduler.scheduler import Scheduler, SchedulerSettings

    return Scheduler(svc.service(PLACEMENT), DatabaseHostStates(svc), SchedulerSettings.load(svc.config))


def request_spec(svc: ComputeService, inst: Instance, want: dict[str, int], exclude: tuple[str, ...],
                 forced: str | None, flavor: dict[str, Any] | None = None) -> RequestSpec:
    f = flavor or inst.flavor
    group = None
    if inst.server_group_id:
        with svc.session() as s:
            g = s.get(ServerGroup, inst.server_group_id)
            if g is not None:
                others = [m for m in g.members if m != inst.id]
                hosts = tuple(h for h in s.scalars(select(Instance.host).where(
                    Instance.id.in_(others), Instance.deleted.is_(False), Instance.host.is_not(None))) if h)
                group = SchedGroup(g.id, g.policy, hosts, int((g.rules or {}).get("max_server_per_host", 1)))
    image = inst.doc.get("image") or {}
    return RequestSpec(
        # A volume-backed server's root disk is its volume: it claims no local root disk (Nova does the same).
        flavor=Flavor(int(f["vcpus"]), int(f["memory_mb"]), 0 if volume_backed(inst) else int(f["root_gb"]),
                      int(f.get("ephemeral_gb", 0)),
                      int(f.get("swap", 0)), dict(f.get("extra_specs") or {})),
        project_id=inst.project_id, user_id=inst.user_id, instance_uuids=[inst.id],
        image_properties=dict(image.get("properties") or {}), availability_zone=inst.availability_zone,
        force_host=forced, server_group=group, ignore_hosts=frozenset(exclude))
