"""An in-memory driver: instant, no host effects. For fast tests and scale simulations; never the default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tinystack.compute.drivers.base import (
    NOSTATE,
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    DriverError,
    HostInfo,
    InstanceInfo,
    Spec,
)


@dataclass
class FakeGuest:
    spec: Spec
    power_state: int = SHUTDOWN
    rescue: bool = False
    boots: int = 0
    snapshots: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


class FakeDriver:
    """Keeps guests in a dict. ``fail_on`` makes the named operation raise (to test error handling)."""

    def __init__(self, vcpus: int = 16, memory_mb: int = 32768, local_gb: int = 500) -> None:
        self.guests: dict[str, FakeGuest] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_on: dict[str, DriverError] = {}
        self._host = HostInfo(vcpus, memory_mb, local_gb, "QEMU", 7002000,
                              {"arch": "x86_64", "model": "fake", "vendor": "tinystack", "features": []})

    def _call(self, op: str, instance_id: str) -> None:
        self.calls.append((op, instance_id))
        if op in self.fail_on:
            raise self.fail_on[op]

    def _guest(self, instance_id: str) -> FakeGuest:
        guest = self.guests.get(instance_id)
        if guest is None:
            raise DriverError(f"instance {instance_id} does not exist on this host")
        return guest

    async def init_host(self) -> None:
        return None

    async def host_info(self) -> HostInfo:
        return self._host

    async def list_instances(self) -> list[str]:
        return list(self.guests)

    async def get_info(self, instance_id: str) -> InstanceInfo:
        guest = self.guests.get(instance_id)
        if guest is None:
            return InstanceInfo(False, NOSTATE)
        return InstanceInfo(True, guest.power_state)

    async def create(self, spec: Spec) -> None:
        self._call("create", spec["id"])
        self.guests.setdefault(spec["id"], FakeGuest(spec=dict(spec)))

    async def power_on(self, spec: Spec) -> None:
        self._call("power_on", spec["id"])
        guest = self._guest(spec["id"])
        if guest.power_state in (RUNNING, PAUSED):
            return
        guest.rescue = bool(spec.get("rescue"))
        guest.spec = dict(spec)
        guest.power_state = RUNNING
        guest.boots += 1
        guest.console.append(f"boot {guest.boots} of {spec.get('hostname') or spec['id']}")

    async def power_off(self, instance_id: str, timeout: float) -> None:
        self._call("power_off", instance_id)
        self._guest(instance_id).power_state = SHUTDOWN

    async def pause(self, instance_id: str) -> None:
        self._call("pause", instance_id)
        guest = self._guest(instance_id)
        if guest.power_state != RUNNING and guest.power_state != PAUSED:
            raise DriverError("cannot pause a guest that is not running")
        guest.power_state = PAUSED

    async def unpause(self, instance_id: str) -> None:
        self._call("unpause", instance_id)
        guest = self._guest(instance_id)
        if guest.power_state == PAUSED:
            guest.power_state = RUNNING

    async def suspend(self, instance_id: str) -> None:
        self._call("suspend", instance_id)
        guest = self._guest(instance_id)
        if guest.power_state in (RUNNING, PAUSED):
            guest.power_state = SUSPENDED

    async def reboot(self, spec: Spec, hard: bool) -> None:
        self._call("reboot_hard" if hard else "reboot_soft", spec["id"])
        guest = self._guest(spec["id"])
        guest.power_state = RUNNING
        guest.boots += 1

    async def rebuild_disks(self, spec: Spec, recreate_root: bool) -> None:
        self._call("rebuild_disks" if not recreate_root else "rebuild_disks_new_root", spec["id"])
        self._guest(spec["id"]).spec = dict(spec)

    async def snapshot(self, instance_id: str, image_id: str) -> None:
        self._call("snapshot", instance_id)
        self._guest(instance_id).snapshots.append(image_id)

    async def unrescue(self, instance_id: str) -> None:
        self._call("unrescue", instance_id)
        self._guest(instance_id).rescue = False

    async def destroy(self, instance_id: str) -> None:
        self._call("destroy", instance_id)
        self.guests.pop(instance_id, None)

    def console_log_path(self, instance_id: str) -> str:
        return os.path.join("/nonexistent/fake", instance_id, "console.log")

    async def diagnostics(self, instance_id: str) -> dict[str, Any]:
        guest = self.guests.get(instance_id)
        if guest is None or guest.power_state != RUNNING:
            return {}
        flavor = guest.spec.get("flavor") or {}
        return {"state": "running", "driver": "fake", "hypervisor": "fake", "hypervisor_os": "linux",
                "uptime": 0, "config_drive": bool(guest.spec.get("config_drive")),
                "num_cpus": flavor.get("vcpus", 1), "num_nics": len(guest.spec.get("nics") or []),
                "num_disks": 1, "memory_details": {"maximum": flavor.get("memory_mb", 0), "used": 0},
                "cpu_details": [], "nic_details": [], "disk_details": []}

    async def close(self, stop_guests: bool) -> None:
        if stop_guests:
            for guest in self.guests.values():
                guest.power_state = SHUTDOWN
