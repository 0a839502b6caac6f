"""The QEMU driver: one detached ``qemu-system-x86_64`` per instance, run in the node namespace, driven over
QMP; disks are qcow2 overlays on cached base images, or for a volume-backed instance its boot volume's file (see
the sibling modules for each part).

Several nodes may share one instances path (shared instance storage, as Nova treats NFS): each instance dir
names the host that holds it (``host``), and a driver lists, runs and removes only what its host holds and
only QEMUs in its own node namespace. Moving a guest hands its dir over: ``release``/``claim`` (cold) or
``prepare_incoming``/``migrate_out`` (live, QEMU to QEMU over TCP).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinystack.compute.drivers.base import (
    NOSTATE,
    SHUTDOWN,
    SUSPENDED,
    DriverError,
    HostInfo,
    InstanceInfo,
    Spec,
)
from tinystack.compute.drivers.qemu import accel, disks, hostinfo, process, qmp
from tinystack.compute.drivers.qemu import volumes as qvol
from tinystack.compute.drivers.qemu.handover import Handover
from tinystack.compute.drivers.qemu.imagecache import ImageCache
from tinystack.compute.drivers.qemu.kvmwatch import KVM_FAULT
from tinystack.compute.drivers.qemu.layout import InstanceDir
from tinystack.compute.drivers.qemu.snapshot import Snapshots
from tinystack.core.svcauth import ServiceAuth

log = logging.getLogger(__name__)


class QemuDriver(Handover, Snapshots):
    """The one class the agent sees (the driver boundary); its parts are the mixins it is made of: ``ownership``
    (which host holds an instance, which QEMU is ours), ``kvmwatch``, ``power``, ``snapshot``, ``handover``."""

    def __init__(self, instances_path: Path, image_cache_dir: Path, auth: Callable[[], ServiceAuth], *,
                 netns: str | None, kvm: str = "auto", power_off_timeout: float = 10.0,
                 console_log_max_bytes: int = 1024 * 1024, tap_wait_timeout: float = 30.0,
                 image_cache_max_age: float = 86400.0, host: str = "", volume_detach_timeout: float = 30.0,
                 qemu: str = process.QEMU, kvm_probe_image: accel.ProbeImage | None = None) -> None:
        self.instances_path = instances_path
        self.host = host
        self.images = ImageCache(image_cache_dir, auth, image_cache_max_age)
        self._auth = auth
        self.netns = netns
        self.qemu = qemu
        # The verdict on KVM is the node's (one file beside the image cache, which the node's drivers share).
        self.accel = accel.Accelerator(kvm, qemu, image_cache_dir / "kvm-verdict.json", kvm_probe_image)
        self.power_off_timeout = power_off_timeout
        self.console_log_max_bytes = console_log_max_bytes
        self.tap_wait_timeout = tap_wait_timeout
        self.volume_detach_timeout = volume_detach_timeout
        self._locks = {}
        self._drains = {}
        self._host_info: HostInfo | None = None
        self._kvm: asyncio.Task[bool] | None = None
        self._watches = {}

    # -- host ---------------------------------------------------------------------------------------

    async def init_host(self) -> None:
        self.instances_path.mkdir(parents=True, exist_ok=True)
        if self.accel.mode == "auto" and self._kvm is None:
            # Probe now, in the background, so the first boot does not wait for it.
            self._kvm = asyncio.create_task(self.accel.use_kvm())
        # Guests still running from before an agent restart: keep their consoles logged.
        for instance_id in await self.list_instances():
            live = self._live(self._dir(instance_id))
            if live is not None:
                await self._ensure_drain(live)

    async def host_info(self) -> HostInfo:
        if self._host_info is None:
            self._host_info = await hostinfo.probe(self.instances_path, self.qemu)
        # Nova's hypervisor_type: KVM only when guests really run under it.
        return dataclasses.replace(self._host_info, hypervisor_type="KVM" if self.accel.known else "QEMU")

    async def list_instances(self) -> list[str]:
        return [i for i in self._all_dirs() if self._mine(self._dir(i))]

    async def get_info(self, instance_id: str) -> InstanceInfo:
        idir = self._dir(instance_id)
        if not idir.has_disks() or not self._mine(idir):
            return InstanceInfo(False, NOSTATE)
        live = self._live(idir)
        if live is None:
            return InstanceInfo(True, SUSPENDED if idir.memory_save.exists() else SHUTDOWN)
        async with self._lock(instance_id):
            state = await self._runstate(live)
            if state == "internal-error" and self._under_kvm(live):
                if self.accel.mode == "auto":
                    await self._fall_back_to_tcg(idir, live, "a guest stopped with a KVM internal error")
                    state = await self._runstate(self._live(idir))
                else:
                    return InstanceInfo(True, qmp.POWER_FOR_RUNSTATE[state], fault=KVM_FAULT)
        return InstanceInfo(True, qmp.POWER_FOR_RUNSTATE.get(state, NOSTATE))

    # -- disks --------------------------------------------------------------------------------------

    async def create(self, spec: Spec) -> None:
        idir = self._dir(spec["id"])
        async with self._lock(spec["id"]):
            if idir.has_disks():
                if self._mine(idir):
                    return
                raise DriverError(f"the files of instance {idir.uuid} are held by host {self._owner(idir)}")
            idir.path.mkdir(parents=True, exist_ok=True)
            self._set_owner(idir, self.host)
            await self._fetch_boot_images(spec)
            await self._build_disks(idir, spec, new_root=True)
            idir.write_launch(spec)

    async def _fetch_boot_images(self, spec: Spec) -> None:
        root, _ = qvol.split_root(spec.get("volumes") or [])
        # A volume-backed guest needs only the kernel and ramdisk its volume's image names, not the image.
        image_id = None if root is not None else (spec.get("image") or {}).get("id")
        ids = [image_id, spec.get("kernel_image_id"), spec.get("ramdisk_image_id")]
        await asyncio.gather(*(self.images.get(i) for i in ids if i))

    async def _build_disks(self, idir: InstanceDir, spec: Spec, new_root: bool) -> None:
        flavor = spec.get("flavor") or {}
        image_id = (spec.get("image") or {}).get("id")
        root, _ = qvol.split_root(spec.get("volumes") or [])
        if root is not None:
            if idir.disk.exists() or (new_root and idir.volume_root.exists()):
                # Its root is the volume: there is no disk to recreate from an image.
                raise DriverError("the root disk of a volume-backed instance cannot be rebuilt from an image",
                                  permanent=True)
            idir.volume_root.write_text(str(root["volume_id"]))
        elif not image_id:
            raise DriverError("the instance has neither an image nor a boot volume", permanent=True)
        elif new_root or not idir.disk.exists():
            await disks.create_overlay(idir.disk, await self.images.get(image_id), int(flavor.get("root_gb") or 0))
        else:
            await disks.grow(idir.disk, int(flavor.get("root_gb") or 0))
        await disks.ensure_ephemeral(idir.ephemeral, int(flavor.get("ephemeral_gb") or 0))
        await disks.ensure_swap(idir.swap, int(flavor.get("swap_mb") or 0))
        await disks.build_config_drive(idir.config_drive, spec.get("config_drive"))

    async def rebuild_disks(self, spec: Spec, recreate_root: bool) -> None:
        idir = self._dir(spec["id"])
        async with self._lock(spec["id"]):
            await self._ensure_off(idir)
            disks.remove(idir.memory_save)  # saved memory cannot outlive new disks
            await self._fetch_boot_images(spec)
            await self._build_disks(idir, spec, new_root=recreate_root)
            idir.write_launch(spec)

    async def unrescue(self, instance_id: str) -> None:
        idir = self._dir(instance_id)
        async with self._lock(instance_id):
            await self._ensure_off(idir)
            disks.remove(idir.rescue_disk)

    # -- volumes ------------------------------------------------------------------------------------

    async def attach_volume(self, instance_id: str, volume: dict[str, Any]) -> None:
        base = self._dir(instance_id)
        vid = volume["volume_id"]
        async with self._lock(instance_id):
            live = self._running(base)
            launch = base.read_launch() or {}
            listed = [dict(v) for v in launch.get("volumes") or []]
            known = next((v for v in listed if v["volume_id"] == vid), None)
            taken = {int(v["slot"]) for v in listed if v.get("slot") is not None and v["volume_id"] != vid}
            [placed] = qvol.assign_slots([{**volume, "slot": (known or {}).get("slot")}], taken)
            await qvol.attach(self._qmp(live), qvol.localize(placed, self.host, base.path))
            launch["volumes"] = [placed if v["volume_id"] == vid else v for v in listed] + ([] if known else [placed])
            base.write_launch(launch)

    async def extend_volume(self, instance_id: str, volume: dict[str, Any]) -> None:
        base = self._dir(instance_id)
        live = self._live(base)
        if live is None or not self._mine(base):
            return
        async with self._lock(instance_id):
            if await qmp.runstate(live.qmp) not in ("running", "paused"):
                return
            placed = qvol.localize(volume, self.host, base.path)
            if await qvol.extend(self._qmp(live), placed, int(volume["size_gb"]) * disks.GiB):
                log.info("instance %s: volume %s grown to %s GiB", instance_id, volume["volume_id"],
                         volume["size_gb"])

    async def detach_volume(self, instance_id: str, volume_id: str) -> None:
        base = self._dir(instance_id)
        live = self._running(base)
        known: dict[str, Any] = next((v for v in (base.read_launch() or {}).get("volumes") or []
                                      if v["volume_id"] == volume_id), {})
        if known.get("boot_index") == 0:
            raise DriverError(f"volume {volume_id} is the root disk of instance {instance_id}", permanent=True)
        lock = self._lock(instance_id)

        async def call(command: str, arguments: dict[str, Any] | None = None) -> Any:
            async with lock:  # per command, not across the wait for the guest
                return await qmp.execute(live.qmp, command, arguments)

        await qvol.detach(call, volume_id, str(known.get("serial") or volume_id[:20]), self.volume_detach_timeout)
        qvol.forget_keys(base.path, volume_id, str(known.get("serial") or volume_id[:20]))
        async with lock:
            launch = base.read_launch() or {}
            launch["volumes"] = [v for v in launch.get("volumes") or [] if v["volume_id"] != volume_id]
            base.write_launch(launch)

    async def attached_volumes(self, instance_id: str) -> list[str]:
        base = self._dir(instance_id)
        live = self._live(base)
        if live is None or not self._mine(base):
            return []
        async with self._lock(instance_id):
            present = await qvol.present(self._qmp(live))
        order = [v["volume_id"] for v in (base.read_launch() or {}).get("volumes") or []]
        return [v for v in order if v in present] + sorted(present - set(order))

    @staticmethod
    def _qmp(idir: InstanceDir) -> qvol.Qmp:
        async def call(command: str, arguments: dict[str, Any] | None = None) -> Any:
            return await qmp.execute(idir.qmp, command, arguments)

        return call

    # -- teardown -----------------------------------------------------------------------------------

    async def destroy(self, instance_id: str) -> None:
        idir = self._dir(instance_id)
        async with self._lock(instance_id):
            await self._ensure_off(idir)
            drain = self._drains.pop(instance_id, None)
            if drain is not None:
                await drain.stop()
            owner = self._owner(idir)
            if owner not in (None, self.host or ""):
                # Another node holds the files (this node was a migration's destination that never got the
                # guest): only this node's process goes.
                return
            if idir.run_dir != idir.path:
                await asyncio.to_thread(shutil.rmtree, idir.run_dir, True)
            if idir.path.exists():
                await asyncio.to_thread(shutil.rmtree, idir.path, True)
        self._locks.pop(instance_id, None)
        await self._cleanup_images()

    async def _cleanup_images(self) -> None:
        in_use: set[str] = set()
        for instance_id in self._all_dirs():  # other nodes' guests on the shared path use the cache too
            spec = self._dir(instance_id).read_launch() or {}
            in_use.update(i for i in ((spec.get("image") or {}).get("id"), spec.get("kernel_image_id"),
                                      spec.get("ramdisk_image_id")) if i)
        removed = self.images.cleanup(in_use)
        if removed:
            log.info("image cache: removed unused bases %s", ", ".join(removed))

    def console_log_path(self, instance_id: str) -> str:
        return str(self.instances_path / instance_id / "console.log")

    async def diagnostics(self, instance_id: str) -> dict[str, Any]:
        base = self._dir(instance_id)
        idir = self._live(base)
        pid = None if idir is None else process.pid_of(idir)
        if idir is None or pid is None or not self._mine(base):
            return {}
        spec = base.read_launch() or {}
        flavor = spec.get("flavor") or {}
        async with self._lock(instance_id):
            try:
                state = await qmp.runstate(idir.qmp)
                blockstats = await qmp.execute(idir.qmp, "query-blockstats") or []
            except DriverError:
                return {}
        try:
            started = os.stat(f"/proc/{pid}").st_mtime
        except FileNotFoundError:
            return {}
        return {
            "state": state, "driver": "qemu", "hypervisor": "qemu", "hypervisor_os": "linux",
            "uptime": int(time.time() - started), "config_drive": idir.config_drive.exists(),
            "num_cpus": int(flavor.get("vcpus") or 1), "num_nics": len(spec.get("nics") or []),
            "num_disks": len(blockstats),
            "memory_details": {"maximum": int(flavor.get("memory_mb") or 0), "used": 0},
            "cpu_details": [{"id": i, "time": None, "utilisation": None} for i in range(int(flavor.get("vcpus") or 1))],
            "nic_details": [{"mac_address": n.get("mac_address")} for n in spec.get("nics") or []],
            "disk_details": [{"read_bytes": b["stats"].get("rd_bytes", 0), "read_requests": b["stats"].get("rd_operations", 0),
                              "write_bytes": b["stats"].get("wr_bytes", 0),
                              "write_requests": b["stats"].get("wr_operations", 0), "errors_count": 0}
                             for b in blockstats],
        }

    async def close(self, stop_guests: bool) -> None:
        tasks = [t for t in (self._kvm, *self._watches.values()) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watches.clear()
        if stop_guests:
            # This node's QEMUs only, held or not (an incoming migration's too): the other nodes stop theirs.
            ids = [i for i in self._all_dirs() if self._live(self._dir(i)) is not None]
            await asyncio.gather(*(self._stop_for_exit(i) for i in ids), return_exceptions=True)
        for drain in self._drains.values():
            await drain.stop()
        self._drains.clear()

    async def _stop_for_exit(self, instance_id: str) -> None:
        idir = self._dir(instance_id)
        async with self._lock(instance_id):
            await self._graceful_off(idir, self.power_off_timeout)
