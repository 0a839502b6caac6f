"""First-start networks, following DevStack: the external flat network ``public`` (172.24.4.0/24) owned
by admin, and for project ``demo`` the network ``private`` (10.0.0.0/26) with ``router1`` joining it to
``public``. Idempotent: what exists (by name and project) is kept; nothing has a fixed id."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tinystack.core.auth import RequestContext
from tinystack.core.lease import Lease
from tinystack.core.service import elevated

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import NetworkService

log = logging.getLogger(__name__)
ProjectLookup = Callable[[str], "str | None"]


def _admin(project_id: str) -> RequestContext:
    return elevated(RequestContext(user_id="tinystack-bootstrap", user_name="bootstrap", project_id=project_id,
                                   project_name="admin"))


def _find(svc: NetworkService, ctx: RequestContext, plural: str, **filters: str) -> dict[str, Any] | None:
    items = svc.list(ctx, plural, {k: [v] for k, v in filters.items()}, "")[plural]
    return items[0] if items else None


def run(svc: NetworkService, lookup: ProjectLookup) -> bool:
    """Create what is missing; False when the identity projects do not exist yet."""
    admin_project, demo_project = lookup("admin"), lookup("demo")
    if admin_project is None or demo_project is None:
        return False
    ctx = _admin(admin_project)
    public = _find(svc, ctx, "networks", name="public", project_id=admin_project)
    if public is None:
        public = svc.create(ctx, "networks", {"network": {
            "name": "public", "router:external": True, "shared": False, "provider:network_type": "flat",
            "provider:physical_network": svc.settings.public_physnet, "project_id": admin_project}})["network"]
    public_subnet = _find(svc, ctx, "subnets", name="public-subnet", network_id=public["id"])
    if public_subnet is None:
        public_subnet = svc.create(ctx, "subnets", {"subnet": {
            "name": "public-subnet", "network_id": public["id"], "ip_version": 4, "cidr": "172.24.4.0/24",
            "gateway_ip": "172.24.4.1", "enable_dhcp": False, "project_id": admin_project,
            "allocation_pools": [{"start": "172.24.4.2", "end": "172.24.4.254"}]}})["subnet"]
    private = _find(svc, ctx, "networks", name="private", project_id=demo_project)
    if private is None:
        private = svc.create(ctx, "networks", {"network": {"name": "private", "project_id": demo_project}})["network"]
    private_subnet = _find(svc, ctx, "subnets", name="private-subnet", network_id=private["id"])
    if private_subnet is None:
        private_subnet = svc.create(ctx, "subnets", {"subnet": {
            "name": "private-subnet", "network_id": private["id"], "ip_version": 4, "cidr": "10.0.0.0/26",
            "project_id": demo_project}})["subnet"]
    router = _find(svc, ctx, "routers", name="router1", project_id=demo_project)
    if router is None:
        router = svc.create(ctx, "routers", {"router": {
            "name": "router1", "project_id": demo_project,
            "external_gateway_info": {"network_id": public["id"]}}})["router"]
    if not _find(svc, ctx, "ports", device_id=router["id"], device_owner="network:router_interface"):
        from tinystack.network.routers import add_interface

        add_interface(svc, ctx, router["id"], {"subnet_id": private_subnet["id"]})
    return True


class Bootstrapper:
    """Runs ``run`` once identity's projects exist; safe to call from any thread, cheap once done."""

    def __init__(self, svc: NetworkService, lookup: ProjectLookup) -> None:
        self.svc = svc
        self.lookup = lookup
        self.done = not svc.settings.bootstrap
        self._lock = threading.Lock()

    def ensure(self) -> None:
        if self.done:
            return
        with self._lock:
            if self.done:
                return
            # One API process at a time (find-or-create by name would make two of each); a process that finds
            # the lease taken tries again later, and then finds the networks made.
            lease = Lease(self.svc.db, "network.bootstrap")
            try:
                if not lease.acquire():
                    return
                try:
                    self.done = run(self.svc, self.lookup)
                finally:
                    lease.release()
            except Exception:
                log.exception("network bootstrap failed; it is retried on the next request")
