"""Remote consoles on the compute side: which console types a server can have, whether it can have one now,
and where, on the node that holds it, its VNC server and interactive serial console listen (the console proxy
asks through ComputeService)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tinystack.compute import agent_settings, console_sockets
from tinystack.compute.models import ComputeNode, Instance
from tinystack.compute.states import ACTIVE, PAUSED_VM, RESCUED
from tinystack.core import errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

RULE = "os_compute_api:os-remote-consoles"

# protocol -> the types Nova knows for it (the request schema); only those in SUPPORTED are served.
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "vnc": ("novnc", "xvpvnc"), "spice": ("spice-html5",), "rdp": ("rdp-html5",), "serial": ("serial",),
    "mks": ("webmks",),
}
SUPPORTED: dict[str, str] = {"novnc": "vnc", "serial": "serial"}  # type -> the guest socket it opens

# QEMU runs (and serves its sockets) in these states; a console of a stopped or shelved guest is a 409.
RUNNING_STATES = (ACTIVE, PAUSED_VM, RESCUED)


@dataclass(frozen=True)
class Endpoint:
    """A console's node-side end: the node that holds the instance, the unix socket there, the socket's kind
    (``vnc`` or ``serial``) and the address of the node's console bridge when it serves one (split deployment)."""

    host: str
    path: Path
    kind: str = "vnc"
    bridge: str | None = None


class Consoles:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def check(self, ctx: RequestContext, server_id: str, console_type: str) -> str:
        """The server's id once the caller may open a ``console_type`` console on it now: 404 for a server the
        caller cannot see, 403 without the console rule, 400 for a type this cloud does not serve, 409 when the
        guest is not running."""
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, server_id, "os_compute_api:servers:show")
            self.svc.enforce(ctx, RULE, {"project_id": inst.project_id})
            if console_type not in SUPPORTED:
                raise errors.BadRequest(f"Unavailable console type {console_type}.")
            if inst.vm_state not in RUNNING_STATES or not inst.host:
                raise errors.Conflict(f"Instance {inst.id} is not ready.")
            return inst.id

    def endpoint(self, instance_id: str, console_type: str) -> Endpoint | None:
        """Where the console of a live instance is reached on its node, or None (gone, not placed, not running)."""
        kind = SUPPORTED.get(console_type)
        if kind is None:
            return None
        with self.svc.session() as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted or not inst.host or inst.vm_state not in RUNNING_STATES:
                return None
            host = inst.host
            node = s.get(ComputeNode, host)
            bridge = node.console_address if node is not None else None
        settings = agent_settings.load(self.svc.config)
        return Endpoint(host, console_sockets.socket_path(settings.instances_path, instance_id, host, kind), kind,
                        bridge or None)
