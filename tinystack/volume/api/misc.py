"""The small read-mostly resources: availability zones, extensions, limits, quota sets and services."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.volume import schemas, views
from tinystack.volume.api.common import both
from tinystack.volume.models import utcnow
from tinystack.volume.service import VolumeService

# What this cloud's Cinder API offers, in the extensions list clients still read.
EXTENSIONS = [
    ("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes", "Extended SnapshotAttributes support."),
    ("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute", "Expose the internal project_id as an attribute of a volume."),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute", "Expose migration_status as an attribute of a volume."),
    ("os-vol-image-meta", "VolumeImageMetadata", "Show image metadata associated with the volume."),
    ("os-volume-actions", "VolumeActions", "Enable volume actions."),
    ("os-admin-actions", "AdminActions", "Enable admin actions."),
    ("os-quota-sets", "Quotas", "Quota management support."),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
    ("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
    ("os-services", "Services", "Services support."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("os-volume-transfer", "VolumeTransfer", "Volume transfer management support."),
    ("capabilities", "Capabilities", "Capabilities support."),
    ("scheduler-stats", "Scheduler_stats", "Scheduler stats support."),
]


class MiscAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        q = "/os-quota-sets/{tenant_id}"
        return [*both("GET", "/os-availability-zone", self.zones), *both("GET", "/extensions", self.extensions),
                *both("GET", "/limits", self.limits), *both("GET", f"{q}/defaults", self.quota_defaults),
                *both("GET", q, self.quota_show), *both("PUT", q, self.quota_update),
                *both("DELETE", q, self.quota_delete), *both("GET", "/os-services", self.services),
                *both("GET", "/os-hosts", self.hosts), *both("GET", "/os-hosts/{host}", self.host),
                *both("GET", "/scheduler-stats/get_pools", self.pools)]

    async def zones(self, request: web.Request) -> web.Response:
        return json_response({"availabilityZoneInfo": [{"zoneName": z, "zoneState": {"available": True}}
                                                       for z in self.svc.zone_names()]})

    async def extensions(self, request: web.Request) -> web.Response:
        return json_response({"extensions": [
            {"alias": alias, "name": name, "description": text, "links": [], "updated": "2023-01-01T00:00:00+00:00"}
            for alias, name, text in EXTENSIONS]})

    async def limits(self, request: web.Request) -> web.Response:
        return json_response({"limits": {"rate": [], "absolute": await self.svc.call(self.svc.quotas.absolute,
                                                                                       ctx(request))}})

    async def quota_defaults(self, request: web.Request) -> web.Response:
        return json_response({"quota_set": await self.svc.call(self.svc.quotas.defaults, request.match_info["tenant_id"])})

    async def quota_show(self, request: web.Request) -> web.Response:
        usage = request.query.get("usage", "false").lower() in ("true", "1", "yes")
        return json_response({"quota_set": await self.svc.call(self.svc.quotas.show, ctx(request),
                                                               request.match_info["tenant_id"], usage)})

    async def quota_update(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.QUOTA_UPDATE))["quota_set"]
        return json_response({"quota_set": await self.svc.call(self.svc.quotas.update, ctx(request),
                                                               request.match_info["tenant_id"], body)})

    async def quota_delete(self, request: web.Request) -> web.Response:
        await self.svc.call(self.svc.quotas.delete, ctx(request), request.match_info["tenant_id"])
        return empty(200)

    async def services(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "volume_extension:services:index")
        zone = self.svc.settings.default_availability_zone
        now = views.when(utcnow())
        rows: list[dict[str, Any]] = [{"binary": "cinder-scheduler", "host": self.svc.config.host, "zone": zone,
                                       "status": "enabled", "state": "up", "updated_at": now,
                                       "disabled_reason": None}]
        for host, beat in sorted(self.svc.controller.heartbeats.items()):
            for backend in self.svc.retyping.hosts().get(host, [self.svc.settings.backend_name]):  # one per backend
                rows.append({"binary": "cinder-volume", "host": f"{host}@{backend}", "zone": zone,
                             "status": "enabled", "state": "up" if self.svc.controller.host_up(host) else "down",
                             "updated_at": views.when(_from_epoch(beat.get("time"))), "disabled_reason": None})
        binary, host_q = request.query.get("binary"), request.query.get("host")
        rows = [r for r in rows if (not binary or r["binary"] == binary) and (not host_q or r["host"] == host_q)]
        return json_response({"services": rows})


    async def hosts(self, request: web.Request) -> web.Response:
        """Cinder's os-hosts: the storage hosts and the services on them (admin only)."""
        self.svc.enforce(ctx(request), "volume_extension:hosts")
        zone = self.svc.settings.default_availability_zone
        rows = [{"service-status": "available", "service": "cinder-volume", "zone": zone,
                 "service-state": "enabled" if self.svc.controller.host_up(host) else "disabled",
                 "host_name": f"{host}@{backend}",
                 "last-update": views.when(_from_epoch(beat.get("time")))}
                for host, beat in sorted(self.svc.controller.heartbeats.items())
                for backend in self.svc.retyping.hosts().get(host, [self.svc.settings.backend_name])]
        return json_response({"hosts": rows})

    async def host(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "volume_extension:hosts")
        name = request.match_info["host"].split("@", 1)[0]
        if name not in self.svc.controller.heartbeats:
            raise errors.NotFound(f"Host {request.match_info['host']} could not be found.")
        return json_response({"host": [{"resource": r} for r in await self.svc.call(self.svc.host_usage, name)]})


    async def pools(self, request: web.Request) -> web.Response:
        """Cinder's get_pools (admin): each backend of each volume host as ``host@backend#pool``; with ``detail``
        its capabilities and the space its last heartbeat reported."""
        self.svc.enforce(ctx(request), "scheduler_extension:scheduler_stats:get_pools")
        detail = request.query.get("detail", "false").lower() in ("true", "1", "yes")
        wanted_backend = request.query.get("volume_backend_name") or request.query.get("backend_name")
        out: list[dict[str, Any]] = []
        for host, backends in sorted(self.svc.retyping.hosts().items()):
            beat = self.svc.controller.heartbeats.get(host)
            if beat is None:
                continue  # not heard from: the scheduler would not place a volume there either
            for backend in backends:
                if wanted_backend and backend != wanted_backend:
                    continue
                pool: dict[str, Any] = {"name": f"{host}@{backend}#{backend}"}
                if detail:
                    space = (beat.get("pools") or {}).get(backend) or {}
                    pool["capabilities"] = {
                        "pool_name": backend, "volume_backend_name": backend, "vendor_name": "tinystack",
                        "driver_version": "1.0", "storage_protocol": "file",
                        "total_capacity_gb": space.get("capacity_gb", beat.get("capacity_gb")),
                        "free_capacity_gb": space.get("free_gb", beat.get("free_gb")),
                        "reserved_percentage": 0, "QoS_support": False, "thin_provisioning_support": True,
                        "multiattach": True, "timestamp": views.when(_from_epoch(beat.get("time")))}
                out.append(pool)
        return json_response({"pools": out})


def _from_epoch(value: Any) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(value or 0), UTC).replace(tzinfo=None)
