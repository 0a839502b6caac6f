"""An in-memory driver: instant, no host effects. For fast tests and scale simulations; never the default.

Fake drivers built on one ``FakeStorage`` behave like nodes sharing an instances path: a guest moves between
them by handing it over (cold) or through a fake migration address (live), as the QEMU driver's guests do.
"""

from __future__ import annotations

import os
import weakref
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
    host: str = ""  # the node holding it
    volumes: list[str] = field(default_factory=list)  # what the running guest has; the next boot's otherwise
    root: str = ""  # what it boots from: "image:<id>" (a root disk made from it) or "volume:<id>"
    volume_sizes: dict[str, int] = field(default_factory=dict)  # GiB a running guest's volume was grown to


def boot_volume(spec: Spec) -> str | None:
    """The id of the volume a volume-backed guest boots from (its ``volumes`` entry with boot_index 0)."""
    return next((str(v["volume_id"]) for v in spec.get("volumes") or [] if v.get("boot_index") == 0), None)


@dataclass(eq=False)
class FakeStorage:
    """The fake counterpart of a shared instances path: every node's guests, and who listens for which."""

    guests: dict[str, FakeGuest] = field(default_factory=dict)
    listening: dict[str, str] = field(default_factory=dict)  # uri -> instance id waiting for it


_SHARED: weakref.WeakValueDictionary[str, FakeStorage] = weakref.WeakValueDictionary()


def shared_storage(path: str) -> FakeStorage:
    """One storage per instances path, so that the fake nodes of one cloud share it as QEMU nodes share files."""
    storage = _SHARED.get(path)
    if storage is None:
        storage = _SHARED[path] = FakeStorage()
    return storage


class FakeDriver:
    """Keeps guests in a dict. ``fail_on`` makes the named operation raise (to test error handling);
    ``unplug_ignored`` names volumes whose guest never acknowledges the unplug (QEMU's detach then times out)."""

    def __init__(self, vcpus: int = 16, memory_mb: int = 32768, local_gb: int = 500, *, host: str = "",
                 storage: FakeStorage | None = None) -> None:
        self.host = host
        self.storage = storage or FakeStorage()
        self.calls: list[tuple[str, str]] = []
        self.fail_on: dict[str, DriverError] = {}
        self.unplug_ignored: set[str] = set()
        self._host = HostInfo(vcpus, memory_mb, local_gb, "QEMU", 7002000,
                              {"arch": "x86_64", "model": "fake", "vendor": "tinystack", "features": []})

    @property
    def guests(self) -> dict[str, FakeGuest]:
        """The guests this node holds."""
        return {i: g for i, g in self.storage.guests.items() if g.host == self.host}

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
        volume, image = boot_volume(spec), (spec.get("image") or {}).get("id")
        if volume is None and not image:
            raise DriverError("the instance has neither an image nor a boot volume", permanent=True)
        root = f"volume:{volume}" if volume else f"image:{image}"
        guest = self.storage.guests.setdefault(spec["id"], FakeGuest(spec=dict(spec), host=self.host, root=root))
        if guest.host != self.host:
            raise DriverError(f"the files of instance {spec['id']} are held by host {guest.host}")

    async def power_on(self, spec: Spec) -> None:
        self._call("power_on", spec["id"])
        guest = self._guest(spec["id"])
        if guest.power_state in (RUNNING, PAUSED):
            return
        guest.rescue = bool(spec.get("rescue"))
        guest.spec = dict(spec)
        if guest.power_state != SUSPENDED:  # a resume keeps the devices it was suspended with
            guest.volumes = [v["volume_id"] for v in spec.get("volumes") or []]
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
        guest = self._guest(spec["id"])
        if recreate_root and guest.root.startswith("volume:"):
            raise DriverError("the root disk of a volume-backed instance cannot be rebuilt from an image",
                              permanent=True)
        guest.spec = dict(spec)

    async def snapshot(self, instance_id: str, image_id: str) -> None:
        self._call("snapshot", instance_id)
        self._guest(instance_id).snapshots.append(image_id)

    async def unrescue(self, instance_id: str) -> None:
        self._call("unrescue", instance_id)
        self._guest(instance_id).rescue = False

    async def destroy(self, instance_id: str) -> None:
        self._call("destroy", instance_id)
        for uri in [u for u, i in self.storage.listening.items() if i == instance_id and self.host in u]:
            del self.storage.listening[uri]
        if instance_id in self.guests:
            del self.storage.guests[instance_id]

    async def attach_volume(self, instance_id: str, volume: dict[str, Any]) -> None:
        self._call("attach_volume", instance_id)
        guest = self._guest(instance_id)
        if guest.power_state not in (RUNNING, PAUSED):
            raise DriverError(f"instance {instance_id} is not running")
        if volume["volume_id"] not in guest.volumes:
            guest.volumes.append(volume["volume_id"])

    async def detach_volume(self, instance_id: str, volume_id: str) -> None:
        self._call("detach_volume", instance_id)
        guest = self._guest(instance_id)
        if guest.root == f"volume:{volume_id}":
            raise DriverError(f"volume {volume_id} is the root disk of instance {instance_id}", permanent=True)
        if guest.power_state not in (RUNNING, PAUSED):
            raise DriverError(f"instance {instance_id} is not running")
        if volume_id in guest.volumes and volume_id in self.unplug_ignored:
            # What the QEMU driver says once its bounded wait is over; the disk stays in the guest.
            raise DriverError(f"the guest did not release volume {volume_id} (it must acknowledge the PCI unplug)")
        if volume_id in guest.volumes:
            guest.volumes.remove(volume_id)

    async def extend_volume(self, instance_id: str, volume: dict[str, Any]) -> None:
        self._call("extend_volume", instance_id)
        guest = self._guest(instance_id)
        vid, size = str(volume["volume_id"]), int(volume["size_gb"])
        if guest.power_state != RUNNING or vid not in guest.volumes:
            return
        if guest.volume_sizes.get(vid, 0) < size:
            guest.volume_sizes[vid] = size

    async def attached_volumes(self, instance_id: str) -> list[str]:
        guest = self.guests.get(instance_id)
        if guest is None or guest.power_state not in (RUNNING, PAUSED):
            return []
        return list(guest.volumes)

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

    # -- moving between nodes -------------------------------------------------------------------------

    async def release(self, instance_id: str, to_host: str) -> None:
        self._call("release", instance_id)
        guest = self.guests.get(instance_id)
        if guest is not None:
            guest.power_state = SHUTDOWN
            guest.host = to_host

    async def claim(self, instance_id: str, from_host: str, force: bool) -> bool:
        self._call("claim", instance_id)
        guest = self.storage.guests.get(instance_id)
        if guest is None or guest.host == self.host:
            return True
        if not force:
            return False
        guest.power_state = SHUTDOWN
        guest.host = self.host
        return True

    async def prepare_incoming(self, spec: Spec, address: str) -> str:
        self._call("prepare_incoming", spec["id"])
        if spec["id"] not in self.storage.guests:
            raise DriverError(f"the files of instance {spec['id']} are not in the shared instances path",
                              permanent=True)
        uri = f"fake://{address or self.host}/{self.host}/{spec['id']}"
        self.storage.listening[uri] = spec["id"]
        return uri

    async def migrate_out(self, instance_id: str, uri: str, to_host: str, timeout: float) -> None:
        self._call("migrate_out", instance_id)
        guest = self._guest(instance_id)
        if guest.power_state not in (RUNNING, PAUSED):
            raise DriverError(f"instance {instance_id} is not running")
        if self.storage.listening.get(uri) != instance_id:
            raise DriverError(f"live migration to {uri} failed: Connection refused")
        del self.storage.listening[uri]
        guest.host = to_host  # the running guest, its power state and console move as they are
