"""Admin views: os-hypervisors, os-services, os-migrations (os-aggregates and os-simple-tenant-usage have their own modules)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from tinystack.compute import views
from tinystack.compute.admin import Hypervisor
from tinystack.compute.api.common import mid
from tinystack.compute.models import Migration
from tinystack.compute.service import ComputeService
from tinystack.core import errors, paging
from tinystack.core.web import Route, ctx, empty, json_response, query_bool, read_json, version


class AdminAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        h = "/v2.1/os-hypervisors"
        return [
            Route("GET", h, self.hypervisors), Route("GET", f"{h}/detail", self.hypervisors_detail),
            Route("GET", f"{h}/statistics", self.statistics), Route("GET", f"{h}/{{ident}}", self.hypervisor),
            Route("GET", f"{h}/{{pattern}}/search", self.search), Route("GET", f"{h}/{{pattern}}/servers", self.servers),
            Route("GET", "/v2.1/os-services", self.services), Route("PUT", "/v2.1/os-services/{ident}", self.service_put),
            Route("DELETE", "/v2.1/os-services/{ident}", self.service_delete),
            Route("GET", "/v2.1/os-migrations", self.migrations),
        ]

    def _hyp(self, h: Hypervisor, v: views.Version, detail: bool) -> dict[str, Any]:
        node, svc = h.node, h.service
        ident = node.uuid if v >= views.V(2, 53) else node.seq
        out: dict[str, Any] = {"id": ident, "hypervisor_hostname": node.host, "state": "up" if h.up else "down",
                               "status": "disabled" if svc is not None and svc.disabled else "enabled"}
        if detail:
            u = h.usage
            out.update({"hypervisor_type": node.hypervisor_type, "hypervisor_version": node.hypervisor_version,
                        "host_ip": node.host_ip,
                        "service": {"host": node.host,
                                    "id": (svc.uuid if v >= views.V(2, 53) else svc.seq) if svc is not None else ident,
                                    "disabled_reason": svc.disabled_reason if svc is not None else None}})
            if v < views.V(2, 88):
                out.update({"vcpus": node.vcpus, "memory_mb": node.memory_mb, "local_gb": node.local_gb,
                            "vcpus_used": u["vcpus"], "memory_mb_used": u["memory_mb"], "local_gb_used": u["local_gb"],
                            "free_ram_mb": node.memory_mb - u["memory_mb"],
                            "free_disk_gb": node.local_gb - u["local_gb"], "current_workload": 0,
                            "running_vms": u["count"], "disk_available_least": node.local_gb - u["local_gb"],
                            "cpu_info": node.cpu_info if v >= views.V(2, 28) else str(node.cpu_info)})
            else:
                out["uptime"] = None
        # Since 2.75 the list is there even when empty; before, only when the node has servers.
        if h.servers is not None and (h.servers or v >= views.V(2, 75)):
            out["servers"] = h.servers
        return out

    def _list(self, request: web.Request, detail: bool) -> web.Response:
        v, q = version(request), request.query
        pattern = with_servers = None
        if v >= views.V(2, 53):
            pattern = q.get("hypervisor_hostname_pattern")
            with_servers = query_bool(request, "with_servers")
            if pattern is not None and ("limit" in q or "marker" in q):
                raise errors.BadRequest("Paging over hypervisors is not supported with hypervisor_hostname_pattern.")
        hyps = self.svc.admin.hypervisors(ctx(request), pattern=pattern, with_servers=bool(with_servers))
        if v >= views.V(2, 33):
            pg = paging.page(q)
            hyps = paging.paginate(hyps, pg.limit, pg.marker,
                                   lambda h: h.node.uuid if v >= views.V(2, 53) else str(h.node.seq))
        return json_response({"hypervisors": [self._hyp(h, v, detail) for h in hyps]})

    async def hypervisors(self, request: web.Request) -> web.Response:
        return self._list(request, False)

    async def hypervisors_detail(self, request: web.Request) -> web.Response:
        return self._list(request, True)

    async def hypervisor(self, request: web.Request) -> web.Response:
        v = version(request)
        with_servers = query_bool(request, "with_servers") if v >= views.V(2, 53) else False
        h = self.svc.admin.hypervisors(ctx(request), ident=mid(request, "ident"), with_servers=bool(with_servers))[0]
        return json_response({"hypervisor": self._hyp(h, v, True)})

    async def search(self, request: web.Request) -> web.Response:
        """``/os-hypervisors/{pattern}/search`` (before 2.53; the pattern query parameter replaced it)."""
        if version(request) >= views.V(2, 53):
            raise errors.NotFound("The resource could not be found.")
        hyps = self.svc.admin.hypervisors(ctx(request), pattern=request.match_info["pattern"])
        return json_response({"hypervisors": [self._hyp(h, version(request), False) for h in hyps]})

    async def servers(self, request: web.Request) -> web.Response:
        """``/os-hypervisors/{pattern}/servers`` (before 2.53; ``with_servers`` replaced it)."""
        if version(request) >= views.V(2, 53):
            raise errors.NotFound("The resource could not be found.")
        hyps = self.svc.admin.hypervisors(ctx(request), pattern=request.match_info["pattern"], with_servers=True)
        return json_response({"hypervisors": [self._hyp(h, version(request), False) for h in hyps]})

    async def statistics(self, request: web.Request) -> web.Response:
        if version(request) >= views.V(2, 88):
            raise errors.NotFound("The resource could not be found.")
        hyps = self.svc.admin.hypervisors(ctx(request))
        tot = {"count": len(hyps), "vcpus": 0, "memory_mb": 0, "local_gb": 0, "vcpus_used": 0, "memory_mb_used": 0,
               "local_gb_used": 0, "running_vms": 0}
        for h in hyps:
            tot["vcpus"] += h.node.vcpus
            tot["memory_mb"] += h.node.memory_mb
            tot["local_gb"] += h.node.local_gb
            tot["vcpus_used"] += h.usage["vcpus"]
            tot["memory_mb_used"] += h.usage["memory_mb"]
            tot["local_gb_used"] += h.usage["local_gb"]
            tot["running_vms"] += h.usage["count"]
        tot.update(free_ram_mb=tot["memory_mb"] - tot["memory_mb_used"], free_disk_gb=tot["local_gb"] - tot["local_gb_used"],
                   current_workload=0, disk_available_least=tot["local_gb"] - tot["local_gb_used"])
        return json_response({"hypervisor_statistics": tot})

    def _svc(self, row: Any, v: views.Version) -> dict[str, Any]:
        out: dict[str, Any] = {"id": row.uuid if v >= views.V(2, 53) else row.seq, "binary": row.binary, "host": row.host,
               "zone": self.svc.admin.zone_of(row.host) if row.binary == "nova-compute" else "internal",
               "status": "disabled" if row.disabled else "enabled", "state": "up" if self.svc.admin.is_up(row) else "down",
               "updated_at": row.updated_at.isoformat(), "disabled_reason": row.disabled_reason}
        if v >= views.V(2, 11):
            out["forced_down"] = row.forced_down
        return out

    async def services(self, request: web.Request) -> web.Response:
        rows = self.svc.admin.services(ctx(request), request.query.get("host"), request.query.get("binary"))
        return json_response({"services": [self._svc(r, version(request)) for r in rows]})

    async def service_put(self, request: web.Request) -> web.Response:
        v = version(request)
        body = await read_json(request, {"type": "object"})
        ident = mid(request, "ident")
        if v >= views.V(2, 53):
            row = self.svc.admin.update_service(ctx(request), ident, None, None, body)
            return json_response({"service": self._svc(row, v)})
        # Before 2.53: PUT /os-services/{enable|disable|disable-log-reason|force-down} with host and binary.
        changes: dict[str, Any] = {}
        if ident == "enable":
            changes["status"] = "enabled"
        elif ident in ("disable", "disable-log-reason"):
            changes = {"status": "disabled", "disabled_reason": body.get("disabled_reason")}
        elif ident == "force-down":
            changes["forced_down"] = bool(body.get("forced_down"))
        else:
            raise errors.NotFound("Unknown action")
        row = self.svc.admin.update_service(ctx(request), None, body.get("host"), body.get("binary"), changes)
        out: dict[str, Any] = {"host": row.host, "binary": row.binary, "status": "disabled" if row.disabled else "enabled"}
        if ident == "disable-log-reason":
            out["disabled_reason"] = row.disabled_reason or ""
        if ident == "force-down":
            out = {"host": row.host, "binary": row.binary, "forced_down": row.forced_down}
        return json_response({"service": out})

    async def service_delete(self, request: web.Request) -> web.Response:
        self.svc.admin.delete_service(ctx(request), mid(request, "ident"))
        return empty(204)

    async def migrations(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "os_compute_api:os-migrations:index")
        q = select(Migration).order_by(Migration.id.desc())
        if "instance_uuid" in request.query:
            q = q.where(Migration.instance_id == request.query["instance_uuid"])
        if "migration_type" in request.query:
            q = q.where(Migration.migration_type == request.query["migration_type"])
        with self.svc.session() as s:
            rows = list(s.scalars(q).all())
        v = version(request)
        out = []
        for m in rows:
            item: dict[str, Any] = {"id": m.id, "instance_uuid": m.instance_id, "status": m.status,
                                    "source_compute": m.source_compute, "dest_compute": m.dest_compute,
                                    "source_node": m.source_compute, "dest_node": m.dest_compute, "dest_host": m.dest_compute,
                                    "old_instance_type_id": m.old_flavor_id, "new_instance_type_id": m.new_flavor_id,
                                    "created_at": m.created_at.isoformat(), "updated_at": m.updated_at.isoformat(),
                                    "source_region": None, "dest_region": None}
            if v >= views.V(2, 23):
                item["migration_type"] = m.migration_type
            if v >= views.V(2, 59):
                item["uuid"] = m.uuid
            if v >= views.V(2, 80):
                item.update(project_id=m.project_id, user_id=m.user_id)
            out.append(item)
        return json_response({"migrations": out})
