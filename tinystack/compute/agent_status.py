"""What the compute agent reports on ``status.compute``: an instance's state (only when it changed) and the
node's capacity (docs/contracts.md)."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from tinystack.compute import agent_volumes
from tinystack.compute.drivers.base import (
    CRASHED,
    NOSTATE,
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    ComputeDriver,
    DriverError,
    Spec,
)
from tinystack.core.bus import Bus, publish_changed

# Seconds after which an unchanged node report goes out again (with a heartbeat): a report lost on its way (a
# handler that failed, an API process killed while holding it) leaves the node unknown or stale only that long.
NODE_REFRESH = 60.0
VM_FOR_POWER = {RUNNING: "active", PAUSED: "paused", SUSPENDED: "suspended", SHUTDOWN: "stopped",
                NOSTATE: "stopped", CRASHED: "error"}


class Reporting:
    """Mixin of ``ComputeAgent``, which sets these attributes."""

    bus: Bus
    host: str
    driver: ComputeDriver
    migration_address: str
    console_address: str
    _closing: bool
    _specs: dict[str, tuple[int, Spec, float]]
    _detach_refused: dict[str, dict[str, str]]
    _published: dict[str, str]
    _node_doc: str | None
    _node_sent: float

    async def _publish(self, iid: str, observed: int, vm_state: str, power_state: int, task_state: str | None,
                       fault: dict[str, Any] | None, final: bool = False) -> None:
        status: dict[str, Any] = {"vm_state": vm_state, "power_state": power_state, "task_state": task_state,
                                  "fault": fault, "host": self.host,
                                  "console_log": self.driver.console_log_path(iid)}
        if self._closing:
            return
        entry = self._specs.get(iid)
        # Unknown when the hypervisor does not answer: then the conductor decides nothing about volumes.
        with contextlib.suppress(DriverError):
            status["volumes"] = await agent_volumes.guest_volumes(self.driver, iid, entry[1] if entry else None)
        if self._detach_refused.get(iid):
            status["detach_failed"] = self._detach_refused[iid]
        key = json.dumps([observed, status], sort_keys=True)
        if self._published.get(iid) == key:
            return  # nothing new to say (the timer re-reconciles every guest)
        status["diagnostics"] = await self.driver.diagnostics(iid) if final else {}
        await publish_changed(self.bus, self._published, iid, key, "status.compute",
                              {"type": "instance", "id": iid, "host": self.host, "observed_generation": observed,
                               "status": status})

    async def _publish_node(self) -> None:
        # Taken before the host is read: what the report says is at least as new as this, so the API side can keep
        # the newest of this node's reports whatever order its processes apply them in (Admin.upsert_node).
        reported_at = time.time()
        info = await self.driver.host_info()
        status = {"vcpus": info.vcpus, "memory_mb": info.memory_mb, "local_gb": info.local_gb,
                  "hypervisor_type": info.hypervisor_type, "hypervisor_version": info.hypervisor_version,
                  "cpu_info": info.cpu_info, "running_vms": len(await self.driver.list_instances()),
                  # Where other nodes reach this one (its underlay address with several nodes), as Nova's host_ip.
                  "host_ip": self.migration_address or "127.0.0.1",
                  # Where a console proxy on another machine reaches this node's consoles ("" for none).
                  "console_address": self.console_address}
        key = json.dumps(status, sort_keys=True)
        # Sent when it changes, and again every NODE_REFRESH seconds (level-triggered, as heartbeats are).
        if key == self._node_doc and time.monotonic() - self._node_sent < NODE_REFRESH:
            return
        self._node_doc, self._node_sent = key, time.monotonic()
        try:
            await self.bus.publish("status.compute", {"type": "node", "id": self.host, "host": self.host,
                                                      "status": {**status, "reported_at": reported_at}})
        except BaseException:
            self._node_doc = None  # not sent: the next heartbeat sends it, not the next refresh a minute on
            raise
