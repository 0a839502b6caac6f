"""``GET /v2.1/extensions``: the legacy extension list that older clients read to decide what to call.

Only what this compute API serves is listed, under Nova's aliases, so a client that checks for an alias finds it
exactly when the calls behind it work.
"""

from __future__ import annotations

from aiohttp import web

from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, json_response

UPDATED = "2014-12-03T00:00:00Z"
# alias -> name (Nova's names for the v2.1 API's parts).
EXTENSIONS = {
    "os-admin-actions": "AdminActions", "os-aggregates": "Aggregates", "os-attach-interfaces": "AttachInterfaces",
    "os-availability-zone": "AvailabilityZone", "os-console-output": "ConsoleOutput",
    "os-evacuate": "Evacuate",
    "os-extended-availability-zone": "ExtendedAvailabilityZone",
    "os-extended-server-attributes": "ExtendedServerAttributes", "os-extended-status": "ExtendedStatus",
    "os-extended-volumes": "ExtendedVolumes", "flavors": "Flavors", "os-flavor-access": "FlavorAccess",
    "os-flavor-extra-specs": "FlavorExtraSpecs", "os-flavor-manage": "FlavorManage",
    "os-floating-ip-pools": "FloatingIpPools", "os-floating-ips": "FloatingIps", "os-hypervisors": "Hypervisors",
    "images": "Images", "image-metadata": "ImageMetadata", "os-instance-actions": "InstanceActions",
    "ips": "Ips", "os-keypairs": "Keypairs", "os-lock-server": "LockServer", "os-migrate-server": "MigrateServer",
    "os-migrations": "Migrations", "os-networks": "Networks",
    "os-pause-server": "PauseServer", "os-quota-sets": "Quotas", "os-remote-consoles": "RemoteConsoles",
    "os-rescue": "Rescue",
    "os-security-groups": "SecurityGroups", "os-server-diagnostics": "ServerDiagnostics",
    "os-server-groups": "ServerGroups", "server-metadata": "ServerMetadata",
    "os-server-tags": "ServerTags", "servers": "Servers", "os-services": "Services", "os-shelve": "Shelve",
    "os-simple-tenant-usage": "SimpleTenantUsage", "os-suspend-server": "SuspendServer",
    "os-used-limits": "UsedLimits", "limits": "Limits", "os-volumes": "Volumes", "versions": "Versions",
}


def _view(alias: str) -> dict[str, object]:
    name = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": f"{name} support.", "links": [], "updated": UPDATED,
            "namespace": f"http://docs.openstack.org/compute/ext/{alias}/api/v1.1"}


class ExtensionsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("GET", "/v2.1/extensions", self.index), Route("GET", "/v2.1/extensions/{alias}", self.show)]

    async def index(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "os_compute_api:extensions")
        return json_response({"extensions": [_view(a) for a in sorted(EXTENSIONS)]})

    async def show(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "os_compute_api:extensions")
        alias = request.match_info["alias"]
        if alias not in EXTENSIONS:
            raise errors.NotFound(f"Extension {alias} could not be found.")
        return json_response({"extension": _view(alias)})
