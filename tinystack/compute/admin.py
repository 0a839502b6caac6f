"""Operators' views of the compute fleet: compute nodes (from agents' ``node`` docs, registered in placement),
services (from heartbeats), availability zones and host aggregates; also the hosts a server may go to."""

from __future__ import annotations

import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from tinystack.compute import aggregates, hoststate
from tinystack.compute.models import ComputeNode, Instance, ServerGroup, Service, utcnow
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.db import greatest
from tinystack.placement.interface import PLACEMENT

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

P = "os_compute_api"
INTERNAL_ZONE = "internal"
NO_USAGE = {"vcpus": 0, "memory_mb": 0, "local_gb": 0, "count": 0}


def _node_values(st: dict[str, Any]) -> dict[str, Any]:
    """A node report's columns. ``updated_at`` is when the agent built it (``reported_at``, its clock), or now for
    an agent that does not say."""
    try:
        reported = float(st["reported_at"])
        when = datetime.fromtimestamp(reported, UTC).replace(tzinfo=None)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        when = utcnow()
    values: dict[str, Any] = {
        "vcpus": int(st.get("vcpus", 0)), "memory_mb": int(st.get("memory_mb", 0)),
        "local_gb": int(st.get("local_gb", 0)), "hypervisor_type": str(st.get("hypervisor_type", "QEMU")),
        "hypervisor_version": int(st.get("hypervisor_version", 0)), "cpu_info": st.get("cpu_info", {}),
        "running_vms": int(st.get("running_vms", 0)),
        "console_address": str(st.get("console_address") or "") or None, "updated_at": when}
    if st.get("host_ip"):
        values["host_ip"] = str(st["host_ip"])
    return values


@dataclass(frozen=True)
class Hypervisor:
    """One compute node as ``os-hypervisors`` shows it."""

    node: ComputeNode
    service: Service | None
    usage: dict[str, int]
    up: bool
    servers: list[dict[str, str]] | None  # None: not asked for


class Admin:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self.own_host = svc.config.get("DEFAULT", "host") or socket.gethostname()

    # --- heartbeats and services ----------------------------------------------------------------

    def heartbeat(self, host: str, binary: str, when: float) -> None:
        # Two API processes may register services at the same moment (their agents' first heartbeats): the one
        # that loses the unique ``seq`` (or host and binary) runs again on fresh state.
        for attempt in range(5):
            try:
                return self._heartbeat(host, binary, when)
            except IntegrityError:
                if attempt == 4:
                    raise

    def _heartbeat(self, host: str, binary: str, when: float) -> None:
        with self.svc.session() as s:
            row = s.scalar(select(Service).where(Service.host == host, Service.binary == binary))
            now = utcnow()
            if row is None:
                seq = (s.scalar(select(func.max(Service.seq))) or 0) + 1
                row = Service(uuid=str(uuid.uuid4()), seq=seq, host=host, binary=binary,
                              topic="compute" if binary == "nova-compute" else binary.removeprefix("nova-"),
                              disabled=False, forced_down=False, created_at=now, updated_at=now, last_seen=when)
                s.add(row)
                return
            # The database keeps the later time: two API processes recording heartbeats of one service at once
            # (shared status queue, a delayed message) must not move last_seen back.
            s.execute(update(Service).where(Service.uuid == row.uuid)
                      .values(last_seen=greatest(Service.last_seen, when), updated_at=now)
                      .execution_options(synchronize_session=False))

    def heartbeat_self(self) -> None:
        """The API process runs the conductor and the scheduler; they report like Nova's services do."""
        for binary in ("nova-conductor", "nova-scheduler"):
            self.heartbeat(self.own_host, binary, time.time())

    def is_up(self, row: Service) -> bool:
        return not row.forced_down and time.time() - row.last_seen <= self.svc.settings.service_down_time

    def host_up(self, host: str) -> bool:
        with self.svc.session() as s:
            row = s.scalar(select(Service).where(Service.host == host, Service.binary == "nova-compute"))
            return row is not None and self.is_up(row)

    def services(self, ctx: RequestContext, host: str | None, binary: str | None) -> list[Service]:
        self.svc.enforce(ctx, f"{P}:os-services")
        q = select(Service).order_by(Service.seq)
        if host:
            q = q.where(Service.host == host)
        if binary:
            q = q.where(Service.binary == binary)
        with self.svc.session() as s:
            return list(s.scalars(q).all())

    def find_service(self, s: Any, ident: str) -> Service:
        row = s.get(Service, ident)
        if row is None and ident.isdigit():
            row = s.scalar(select(Service).where(Service.seq == int(ident)))
        if row is None:
            raise errors.NotFound(f"Service {ident} could not be found.")
        return row

    def update_service(self, ctx: RequestContext, ident: str | None, host: str | None, binary: str | None,
                       changes: dict[str, Any]) -> Service:
        self.svc.enforce(ctx, f"{P}:os-services")
        with self.svc.session() as s:
            if ident is not None:
                row = self.find_service(s, ident)
            else:
                found = s.scalar(select(Service).where(Service.host == host, Service.binary == binary))
                if found is None:
                    raise errors.NotFound(f"Service {binary} on host {host} could not be found.")
                row = found
            if "status" in changes:
                row.disabled = changes["status"] == "disabled"
                row.disabled_reason = changes.get("disabled_reason") if row.disabled else None
            if "forced_down" in changes:
                row.forced_down = bool(changes["forced_down"])
            row.updated_at = utcnow()
        return row

    def delete_service(self, ctx: RequestContext, ident: str) -> None:
        self.svc.enforce(ctx, f"{P}:os-services")
        with self.svc.session() as s:
            row = self.find_service(s, ident)
            if row.binary == "nova-compute":
                busy = s.scalar(select(func.count()).select_from(Instance).where(
                    Instance.host == row.host, Instance.deleted.is_(False)))
                if busy:
                    raise errors.Conflict("Unable to delete compute service that is hosting instances.")
                node = s.get(ComputeNode, row.host)
                if node is not None:
                    s.delete(node)
            s.delete(row)

    # --- compute nodes --------------------------------------------------------------------------

    def upsert_node(self, host: str, st: dict[str, Any]) -> None:
        """Apply a node report: the compute node's row, its placement provider and its service's liveness.

        Agents re-send unchanged reports every minute and API processes apply them in any order, so a report
        older than the one applied last (``reported_at``) only counts as a heartbeat."""
        if not host:
            return
        cfg = self.svc.settings
        values = _node_values(st)
        # Nodes first reporting at once through several API processes race for the next seq (or the same host):
        # the loser reads again and updates, rather than failing the report.
        for attempt in range(8):
            try:
                applied = self._write_node(host, values)
                break
            except IntegrityError:
                if attempt == 7:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        if applied and self.svc.has("placement"):
            vcpus, memory_mb, local_gb = values["vcpus"], values["memory_mb"], values["local_gb"]
            inventory = {
                "VCPU": {"total": vcpus, "allocation_ratio": cfg.cpu_allocation_ratio, "max_unit": vcpus},
                "MEMORY_MB": {"total": memory_mb, "allocation_ratio": cfg.ram_allocation_ratio,
                              "max_unit": memory_mb, "reserved": 0},
                "DISK_GB": {"total": local_gb, "allocation_ratio": cfg.disk_allocation_ratio, "max_unit": local_gb}}
            self.svc.service(PLACEMENT).ensure_provider(host, {k: v for k, v in inventory.items() if v["total"]})
        # A node doc means an agent runs there: let it count as up until heartbeats take over.
        self.heartbeat(host, "nova-compute", time.time())

    def _write_node(self, host: str, values: dict[str, Any]) -> bool:
        """Write the report's ``values`` unless the row holds a newer report of the node; whether it wrote."""
        with self.svc.session() as s:
            node = s.get(ComputeNode, host)
            if node is None:
                seq = (s.scalar(select(func.max(ComputeNode.seq))) or 0) + 1
                s.add(ComputeNode(host=host, uuid=str(uuid.uuid4()), seq=seq, **values))
                return True
            when = values["updated_at"]
            # Compare-and-swap on the report's time, so that of two API processes applying two reports of one
            # node the older never lands last. A row dated well past this process's clock was written by an
            # agent whose clock has since gone back: the report applies rather than the node freezing meanwhile.
            future = utcnow() + timedelta(seconds=self.svc.settings.service_down_time)
            done = s.execute(update(ComputeNode)
                             .where(ComputeNode.host == host,
                                    or_(ComputeNode.updated_at < when, ComputeNode.updated_at > future))
                             .values(**values).execution_options(synchronize_session=False))
            if not done.rowcount:  # type: ignore[attr-defined]
                return False
            if (node.hypervisor_type, node.cpu_info) != (values["hypervisor_type"], values["cpu_info"]):
                hoststate.changed()  # what the scheduler filters on; a Core UPDATE is not seen by the ORM events
            return True

    def hypervisors(self, ctx: RequestContext, *, ident: str | None = None, pattern: str | None = None,
                    with_servers: bool = False) -> list[Hypervisor]:
        """Compute nodes with their service's state and their guests' usage, in one session: ``ident`` (uuid,
        sequence number or host name) picks one, or 404; ``pattern`` keeps the host names containing it (Nova's
        ``hypervisor_hostname_pattern``), or 404 when none does; ``with_servers`` adds each node's servers."""
        self.svc.enforce(ctx, f"{P}:os-hypervisors")
        with self.svc.session() as s:
            nodes = list(s.scalars(select(ComputeNode).order_by(ComputeNode.seq)).all())
            if ident is not None:
                nodes = [n for n in nodes if ident in (n.uuid, str(n.seq), n.host)]
                if not nodes:
                    raise errors.NotFound(f"Hypervisor {ident} could not be found.")
            if pattern is not None:
                nodes = [n for n in nodes if pattern.lower() in n.host.lower()]
                if not nodes:
                    raise errors.NotFound(f"No hypervisor matching '{pattern}' could be found.")
            services = {r.host: r for r in s.scalars(select(Service).where(Service.binary == "nova-compute"))}
            usage: dict[str, dict[str, int]] = {}
            servers: dict[str, list[dict[str, str]]] = {}
            rows = s.execute(select(Instance.id, Instance.name, Instance.host, Instance.flavor).where(
                Instance.deleted.is_(False), Instance.host.is_not(None)).order_by(Instance.created_at))
            for iid, name, host, flavor in rows:
                u = usage.setdefault(host, {"vcpus": 0, "memory_mb": 0, "local_gb": 0, "count": 0})
                u["vcpus"] += int(flavor["vcpus"])
                u["memory_mb"] += int(flavor["memory_mb"])
                u["local_gb"] += int(flavor["root_gb"]) + int(flavor.get("ephemeral_gb", 0))
                u["count"] += 1
                if with_servers:
                    servers.setdefault(host, []).append({"uuid": iid, "name": name})
            return [Hypervisor(n, services.get(n.host), usage.get(n.host, dict(NO_USAGE)),
                               self.is_up(services[n.host]) if n.host in services else False,
                               servers.get(n.host, []) if with_servers else None) for n in nodes]

    # --- zones and aggregates -------------------------------------------------------------------

    def zone_of(self, host: str) -> str:
        with self.svc.session() as s:
            return aggregates.zone_of(s, host, self.svc.settings.default_availability_zone)

    def zone_names(self) -> set[str]:
        with self.svc.session() as s:
            return aggregates.zone_names(s) | {self.svc.settings.default_availability_zone}

    def zones(self, ctx: RequestContext, detail: bool) -> list[dict[str, Any]]:
        if detail:
            self.svc.enforce(ctx, f"{P}:os-availability-zone:detail")
        with self.svc.session() as s:
            services = list(s.scalars(select(Service)).all())
        by_zone: dict[str, dict[str, Any]] = {}
        for row in services:
            zone = self.zone_of(row.host) if row.binary == "nova-compute" else INTERNAL_ZONE
            z = by_zone.setdefault(zone, {"hosts": {}, "available": False})
            if row.binary == "nova-compute" and self.is_up(row) and not row.disabled:
                z["available"] = True
            z["hosts"].setdefault(row.host, {})[row.binary] = {
                "available": self.is_up(row), "active": not row.disabled, "updated_at": row.updated_at.isoformat()}
        out = []
        for name, z in sorted(by_zone.items()):
            if not detail and name == INTERNAL_ZONE:
                continue
            out.append({"zoneName": name, "zoneState": {"available": z["available"] or name == INTERNAL_ZONE},
                        "hosts": z["hosts"] if detail else None})
        if not any(z["zoneName"] == self.svc.settings.default_availability_zone for z in out) and not detail:
            out.append({"zoneName": self.svc.settings.default_availability_zone, "zoneState": {"available": False},
                        "hosts": None})
        return out

    def forget_member(self, instance_id: str) -> None:
        with self.svc.session() as s:
            for group in s.scalars(select(ServerGroup)):
                if instance_id in group.members:
                    group.members = [m for m in group.members if m != instance_id]
