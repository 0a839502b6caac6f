"""Starting and stopping an instance's QEMU: boot (resuming saved memory, falling back from KVM), power off,
pause, suspend to a memory file, reboot; and the console drain that logs each running guest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

from tinystack.compute.drivers.base import DriverError, Spec
from tinystack.compute.drivers.qemu import accel, disks, process, qmp
from tinystack.compute.drivers.qemu import volumes as qvol
from tinystack.compute.drivers.qemu.console import ConsoleDrain
from tinystack.compute.drivers.qemu.imagecache import ImageCache
from tinystack.compute.drivers.qemu.kvmwatch import KvmWatch
from tinystack.compute.drivers.qemu.layout import InstanceDir

log = logging.getLogger(__name__)


class Power(KvmWatch):
    """Mixin of ``QemuDriver``, which sets these attributes."""

    images: ImageCache
    host: str
    qemu: str
    power_off_timeout: float
    console_log_max_bytes: int
    tap_wait_timeout: float
    _drains: dict[str, ConsoleDrain]

    async def power_on(self, spec: Spec) -> None:
        async with self._lock(spec["id"]):
            await self._boot(self._dir(spec["id"]), spec)

    async def _boot(self, base: InstanceDir, spec: Spec) -> None:
        if self._live(base) is not None:
            return
        idir = self._free_slot(base)
        resuming = base.memory_save.exists()
        if resuming:
            # The saved state only fits the exact devices it was saved with.
            launch = base.read_launch() or spec
        else:
            root, others = qvol.split_root(spec.get("volumes") or [])
            launch = {**spec, "volumes": ([root] if root else []) + qvol.assign_slots(others)}
            base.write_launch(launch)
        incoming = str(base.memory_save) if resuming else None
        args = await self._argv(idir, launch, incoming=incoming)
        await self._wait_taps(launch)
        try:
            await process.start(idir, args, self.netns)
        except DriverError as exc:
            if not (accel.uses_kvm(args) and accel.kvm_error(str(exc))):
                raise
            if self.accel.mode == "on":
                raise DriverError(f"{exc} (KVM fails guests on this host; [compute] kvm = on)", permanent=True) from exc
            await self.accel.mark_broken(f"QEMU could not start a guest under KVM: {str(exc)[-200:]}")
            args = await self._argv(idir, launch, incoming=incoming)
            await process.start(idir, args, self.netns)
        await self._ensure_drain(idir)
        if resuming:
            await self._wait_incoming(idir)
            disks.remove(base.memory_save)
        await qmp.execute(idir.qmp, "cont")
        if accel.uses_kvm(args) and self.accel.mode == "auto":
            self._watch(base, idir)

    async def _wait_taps(self, launch: Spec) -> None:
        for nic in launch.get("nics") or []:
            if self.netns is None:
                raise DriverError("an instance with NICs needs the node namespace", permanent=True)
            await process.wait_tap(self.netns, nic["tap"], self.tap_wait_timeout)

    async def _argv(self, idir: InstanceDir, spec: Spec, incoming: str | None) -> list[str]:
        root, others = qvol.split_root([qvol.localize(v, self.host, idir.path) for v in spec.get("volumes") or []])
        kernel = initrd = None
        if spec.get("kernel_image_id"):
            kernel = str((await self.images.get(spec["kernel_image_id"])).path)
        if spec.get("ramdisk_image_id"):
            initrd = str((await self.images.get(spec["ramdisk_image_id"])).path)
        layout: list[tuple[str, str, bool]] = []
        if spec.get("rescue"):
            if root is not None:
                raise DriverError("a volume-backed instance cannot be rescued", permanent=True)
            # Rescue: a fresh copy of the rescue image (the server's own unless one was named) boots; the
            # original root disk is the second disk.
            if not idir.rescue_disk.exists():
                base = await self.images.get((spec.get("rescue_image") or spec.get("image") or {}).get("id") or "")
                await disks.create_overlay(idir.rescue_disk, base, 0)
            layout.append((str(idir.rescue_disk), "qcow2", False))
        if root is None:
            layout.append((str(idir.disk), "qcow2", False))
        if idir.ephemeral.exists():
            layout.append((str(idir.ephemeral), "qcow2", False))
        if idir.swap.exists():
            layout.append((str(idir.swap), "raw", False))
        if idir.config_drive.exists():
            layout.append((str(idir.config_drive), "raw", True))
        kvm = await self.accel.use_kvm()
        return process.argv(idir, spec, kvm=kvm, disks=layout, kernel=kernel, initrd=initrd, incoming=incoming,
                            volumes=qvol.assign_slots(others), root_volume=root, qemu=self.qemu)

    async def _wait_incoming(self, idir: InstanceDir, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            info = await qmp.execute(idir.qmp, "query-migrate")
            status = (info or {}).get("status")
            if status == "completed":
                return
            if status == "failed":
                raise DriverError(f"resume failed: {(info or {}).get('error-desc', 'incoming migration failed')}")
            if time.monotonic() > deadline:
                raise DriverError("resume timed out")
            await asyncio.sleep(0.1)

    async def _ensure_drain(self, idir: InstanceDir) -> None:
        drain = self._drains.get(idir.uuid)
        if drain is not None and drain.running and drain.sock == idir.serial:
            return
        if drain is not None:
            await drain.stop()
        drain = ConsoleDrain(idir.serial, idir.console_log, self.console_log_max_bytes, idir.serial_mux)
        self._drains[idir.uuid] = drain
        await drain.start()

    async def power_off(self, instance_id: str, timeout: float) -> None:
        idir = self._dir(instance_id)
        async with self._lock(instance_id):
            await self._graceful_off(idir, timeout)
            disks.remove(idir.memory_save)

    async def _graceful_off(self, base: InstanceDir, timeout: float) -> None:
        idir = self._live(base)
        if idir is None:
            return
        if await self._runstate(idir) == "running":
            with contextlib.suppress(DriverError):
                await qmp.execute(idir.qmp, "system_powerdown")
            if await process.wait_gone(idir, timeout):
                return
            log.info("instance %s did not power off within %.0fs; stopping it hard", idir.uuid, timeout)
        await self._ensure_off(base)

    async def _ensure_off(self, base: InstanceDir) -> None:
        """Hard stop of this node's QEMU of the instance: QMP quit, then SIGKILL."""
        while (idir := self._live(base)) is not None:
            await self._quit(idir)

    async def pause(self, instance_id: str) -> None:
        async with self._lock(instance_id):
            idir = self._running(self._dir(instance_id))
            if await self._runstate(idir) != "paused":
                await qmp.execute(idir.qmp, "stop")

    async def unpause(self, instance_id: str) -> None:
        async with self._lock(instance_id):
            idir = self._running(self._dir(instance_id))
            if await self._runstate(idir) != "running":
                await qmp.execute(idir.qmp, "cont")

    async def suspend(self, instance_id: str) -> None:
        base = self._dir(instance_id)
        async with self._lock(instance_id):
            live = self._live(base)
            if live is None:
                return
            idir = live
            tmp = idir.path / "memory.save.tmp"
            await qmp.execute(idir.qmp, "stop")
            await qmp.execute(idir.qmp, "migrate", {"uri": f"exec:cat > {tmp}"})
            deadline = time.monotonic() + 300
            while True:
                info = await qmp.execute(idir.qmp, "query-migrate") or {}
                if info.get("status") == "completed":
                    break
                if info.get("status") in ("failed", "cancelled") or time.monotonic() > deadline:
                    await qmp.execute(idir.qmp, "cont")
                    raise DriverError(f"suspend failed: {info.get('error-desc', info.get('status', 'timeout'))}")
                await asyncio.sleep(0.1)
            os.replace(tmp, idir.memory_save)
            await self._ensure_off(base)

    async def reboot(self, spec: Spec, hard: bool) -> None:
        async with self._lock(spec["id"]):
            live = self._live(self._dir(spec["id"]))
            if live is None:
                return
            idir = live
            if not hard:
                state = await self._runstate(idir)
                if state == "running":
                    with contextlib.suppress(DriverError):
                        await qmp.execute(idir.qmp, "system_powerdown")
                    if await process.wait_gone(idir, self.power_off_timeout):
                        hard = False
                    else:
                        log.info("instance %s ignored the soft reboot; resetting it", idir.uuid)
                        hard = True
                else:
                    hard = True
            if hard:
                await qmp.execute(idir.qmp, "system_reset")
                if await self._runstate(idir) != "running":
                    await qmp.execute(idir.qmp, "cont")
                return
        await self.power_on(spec)  # the guest went down cleanly: boot it again
