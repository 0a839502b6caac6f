"""The scheduler's ``HostStateSource`` over compute's tables (nodes, services, aggregates), and the
``RequestSpec`` the conductor builds for a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tinystack.compute.models import Aggregate, ComputeNode, Instance, ServerGroup, Service
from tinystack.compute.scheduler import Aggregate as SchedAggregate
from tinystack.compute.scheduler import Flavor, HostState, RequestSpec
from tinystack.compute.scheduler import ServerGroup as SchedGroup

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService


class DatabaseHostStates:
    """Every compute node with a placement provider, with its service's up/enabled state and aggregates."""

    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def hosts(self) -> list[HostState]:
        with self.svc.session() as s:
            nodes = list(s.scalars(select(ComputeNode)).all())
            services = {r.host: r for r in s.scalars(select(Service).where(Service.binary == "nova-compute"))}
            aggs = list(s.scalars(select(Aggregate)).all())
        placement = self.svc.service("placement")
        default_az = self.svc.settings.default_availability_zone
        out = []
        for node in nodes:
            rp = placement.provider_uuid(node.host)
            row = services.get(node.host)
            if rp is None or row is None:
                continue
            mine = tuple(SchedAggregate(a.uuid, a.name, dict(a.meta)) for a in aggs if node.host in a.hosts)
            az = next((a.metadata["availability_zone"] for a in mine if a.metadata.get("availability_zone")),
                      default_az)
            arch = (node.cpu_info or {}).get("arch", "x86_64") if isinstance(node.cpu_info, dict) else "x86_64"
            out.append(HostState(host=node.host, rp_uuid=rp, availability_zone=az, aggregates=mine,
                                 enabled=not row.disabled, up=self.svc.admin.is_up(row),
                                 hypervisor_type=node.hypervisor_type, architecture=arch))
        return out


def scheduler_for(svc: ComputeService) -> Any:
    from tinystack.compute.scheduler.scheduler import Scheduler, SchedulerSettings

    return Scheduler(svc.service("placement"), DatabaseHostStates(svc), SchedulerSettings.load(svc.config))


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
        flavor=Flavor(int(f["vcpus"]), int(f["memory_mb"]), int(f["root_gb"]), int(f.get("ephemeral_gb", 0)),
                      int(f.get("swap", 0)), dict(f.get("extra_specs") or {})),
        project_id=inst.project_id, user_id=inst.user_id, instance_uuids=[inst.id],
        image_properties=dict(image.get("properties") or {}), availability_zone=inst.availability_zone,
        force_host=forced, server_group=group, ignore_hosts=frozenset(exclude))
