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
import contextlib
import dataclasses
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tinystack.compute.drivers.base import (
    NOSTATE,
    SHUTDOWN,
    SUSPENDED,
    DriverError,
    HostInfo,
    InstanceInfo,
    Spec,
)
from tinystack.compute.drivers.qemu import accel, disks, hostinfo, migration, process, qmp
from tinystack.compute.drivers.qemu import volumes as qvol
from tinystack.compute.drivers.qemu.console import ConsoleDrain
from tinystack.compute.drivers.qemu.imagecache import ImageCache
from tinystack.compute.drivers.qemu.layout import InstanceDir
from tinystack.core import host
from tinystack.core.svcauth import ServiceAuth

log = logging.getLogger(__name__)

# How long, and how often, a guest started under KVM is watched for a KVM internal error.
KVM_WATCH_SECONDS = 30.0
KVM_WATCH_INTERVAL = 0.5
KVM_FAULT = ("the guest stopped with a KVM internal error: this host's KVM cannot run it "
             "([compute] kvm = on; auto falls back to TCG)")
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


class QemuDriver:
    def __init__(self, instances_path: Path, image_cache_dir: Path, auth: Callable[[], ServiceAuth], *,
                 netns: str | None, kvm: str = "auto", power_off_timeout: float = 10.0,
                 console_log_max_bytes: int = 1024 * 1024, tap_wait_timeout: float = 30.0,
                 image_cache_max_age: float = 86400.0, host: str = "", volume_detach_timeout: float = 30.0,
                 qemu: str = process.QEMU, kvm_probe_image: accel.ProbeImage | None = None) -> None:
        self.instances_path = instances_path
        # The node this driver runs for; empty: the instances path is this driver's alone (no owner files).
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
        self._locks: dict[str, asyncio.Lock] = {}
        self._drains: dict[str, ConsoleDrain] = {}
        self._host_info: HostInfo | None = None
        self._kvm: asyncio.Task[bool] | None = None
        self._watches: dict[str, asyncio.Task[None]] = {}

    def _dir(self, instance_id: str) -> InstanceDir:
        if not _UUID.match(instance_id):
            raise DriverError(f"invalid instance id {instance_id!r}", permanent=True)
        return InstanceDir(self.instances_path / instance_id)

    def _lock(self, instance_id: str) -> asyncio.Lock:
        return self._locks.setdefault(instance_id, asyncio.Lock())

    # -- which host holds an instance, which QEMU is ours ---------------------------------------------

    def _owner(self, idir: InstanceDir) -> str | None:
        """The host holding the instance's files; a dir from before owner files goes to the first to ask."""
        if not self.host:
            return ""
        try:
            return idir.owner_file.read_text().strip()
        except FileNotFoundError:
            pass
        if not idir.has_disks():
            return None
        with contextlib.suppress(FileExistsError):
            fd = os.open(idir.owner_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(self.host)
        return idir.owner_file.read_text().strip()

    def _mine(self, idir: InstanceDir) -> bool:
        return self._owner(idir) == (self.host or "")

    def _set_owner(self, idir: InstanceDir, host: str) -> None:
        if self.host:
            tmp = idir.owner_file.with_suffix(".tmp")
            tmp.write_text(host)
            os.replace(tmp, idir.owner_file)

    def _live(self, idir: InstanceDir) -> InstanceDir | None:
        """The slot of this node's running QEMU of the instance, if there is one."""
        for slot in idir.slots():
            if process.pid_of(slot, self.netns if self.host else None) is not None:
                return slot
        return None

    def _free_slot(self, idir: InstanceDir) -> InstanceDir:
        """A slot no QEMU of the instance uses (on any node): where a new process of it starts."""
        for slot in idir.slots():
            if process.pid_of(slot) is None:
                return slot
        raise DriverError(f"instance {idir.uuid} already has a QEMU in every slot")

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

    def _all_dirs(self) -> list[str]:
        if not self.instances_path.is_dir():
            return []
        return sorted(p.name for p in self.instances_path.iterdir() if p.is_dir() and _UUID.match(p.name))

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

    async def _runstate(self, live: InstanceDir | None) -> str:
        if live is None:
            return "shutdown"
        try:
            return await qmp.runstate(live.qmp)
        except DriverError:
            if process.pid_of(live) is None:
                return "shutdown"  # it exited while we asked
            raise

    def _running(self, idir: InstanceDir) -> InstanceDir:
        live = self._live(idir)
        if live is None:
            raise DriverError(f"instance {idir.uuid} is not running on this host")
        return live

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

    # -- power --------------------------------------------------------------------------------------

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

    # -- KVM that fails guests at run time ------------------------------------------------------------

    def _under_kvm(self, idir: InstanceDir) -> bool:
        pid = process.pid_of(idir)
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0") if pid else []  # noqa: SIM115
        except OSError:
            return False
        return accel.uses_kvm([a.decode(errors="replace") for a in cmdline])

    def _watch(self, base: InstanceDir, idir: InstanceDir) -> None:
        """Watch a guest just started under KVM through its first seconds: a KVM that runs firmware but not
        Linux stops it with an internal error before it prints a line."""
        old = self._watches.pop(base.uuid, None)
        if old is not None:
            old.cancel()
        self._watches[base.uuid] = asyncio.create_task(self._watch_kvm(base, idir))

    async def _watch_kvm(self, base: InstanceDir, idir: InstanceDir) -> None:
        deadline = time.monotonic() + KVM_WATCH_SECONDS
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(KVM_WATCH_INTERVAL)
                async with self._lock(base.uuid):
                    if process.pid_of(idir) is None:
                        return  # stopped by a request or by the guest: not a KVM failure we can tell
                    try:
                        state = await qmp.runstate(idir.qmp)
                    except DriverError:
                        continue
                    if state == "internal-error":
                        await self._fall_back_to_tcg(base, idir, "a guest stopped with a KVM internal error")
                        return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("instance %s: watching its start under KVM failed", base.uuid)
        finally:
            if self._watches.get(base.uuid) is asyncio.current_task():
                del self._watches[base.uuid]

    async def _fall_back_to_tcg(self, base: InstanceDir, idir: InstanceDir, why: str) -> None:
        """Under the instance's lock: the node becomes TCG-only and the guest starts again at once under TCG."""
        await self.accel.mark_broken(why)
        log.warning("instance %s: %s under KVM; starting it again under TCG", base.uuid, why)
        await self._quit(idir)
        launch = base.read_launch()
        if launch is None:
            raise DriverError(f"instance {base.uuid} has no launch record to start it again under TCG")
        await self._boot(base, launch)

    async def _wait_taps(self, launch: Spec) -> None:
        for nic in launch.get("nics") or []:
            if self.netns is None:
                raise DriverError("an instance with NICs needs the node namespace", permanent=True)
            await process.wait_tap(self.netns, nic["tap"], self.tap_wait_timeout)

    async def _argv(self, idir: InstanceDir, spec: Spec, incoming: str | None) -> list[str]:
        root, others = qvol.split_root(spec.get("volumes") or [])
        kernel = initrd = None
        if spec.get("kernel_image_id"):
            kernel = str((await self.images.get(spec["kernel_image_id"])).path)
        if spec.get("ramdisk_image_id"):
            initrd = str((await self.images.get(spec["ramdisk_image_id"])).path)
        layout: list[tuple[str, str, bool]] = []
        if spec.get("rescue"):
            if root is not None:
                raise DriverError("a volume-backed instance cannot be rescued", permanent=True)
            # Rescue: a fresh copy of the image boots; the original root disk is the second disk.
            if not idir.rescue_disk.exists():
                base = await self.images.get((spec.get("image") or {}).get("id") or "")
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
        drain = ConsoleDrain(idir.serial, idir.console_log, self.console_log_max_bytes)
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

    @staticmethod
    async def _quit(idir: InstanceDir) -> None:
        with contextlib.suppress(DriverError):
            await qmp.execute(idir.qmp, "quit")
        if not await process.wait_gone(idir, 5):
            await process.kill(idir)

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
            await qvol.attach(self._qmp(live), placed)
            launch["volumes"] = [placed if v["volume_id"] == vid else v for v in listed] + ([] if known else [placed])
            base.write_launch(launch)

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

    # -- images -------------------------------------------------------------------------------------

    async def snapshot(self, instance_id: str, image_id: str) -> None:
        """Upload the root disk as the image's data: the overlay, or for a volume-backed guest its volume."""
        idir = self._dir(instance_id)
        tmp = idir.path / "snapshot.qcow2"
        root, _ = qvol.split_root((idir.read_launch() or {}).get("volumes") or [])
        source, fmt = (str(root["path"]), str(root.get("format") or "raw")) if root else (str(idir.disk), "qcow2")
        async with self._lock(instance_id):
            resume = False
            live = self._live(idir)
            if live is not None and await self._runstate(live) == "running":
                # QMP stop drains and flushes every block device, so the overlay on disk is consistent.
                await qmp.execute(live.qmp, "stop")
                resume = True
            try:
                await host.run(["qemu-img", "convert", "-U", "-O", "qcow2", "-f", fmt, source, str(tmp)], timeout=3600)
            finally:
                if resume and live is not None:
                    await qmp.execute(live.qmp, "cont")
        try:
            await self._upload(image_id, tmp)
        finally:
            disks.remove(tmp)

    async def _upload(self, image_id: str, path: Path) -> None:
        auth = self._auth()
        url = await auth.endpoint("image")
        headers = {"X-Auth-Token": await auth.token(), "Content-Type": "application/octet-stream"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=300)) as http:
            with open(path, "rb") as f:
                async with http.put(f"{url}/v2/images/{image_id}/file", data=f, headers=headers) as resp:
                    if resp.status == 409:
                        # Already has data (a retry after the upload went through), or the image was deleted.
                        log.warning("snapshot upload to image %s: %s", image_id, (await resp.text())[:200])
                        return
                    if resp.status == 404:
                        raise DriverError(f"snapshot image {image_id} no longer exists", permanent=True)
                    if resp.status >= 300:
                        raise DriverError(f"snapshot upload to image {image_id} gave {resp.status}")

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

    # -- moving between nodes (shared instance storage) -----------------------------------------------

    async def release(self, instance_id: str, to_host: str) -> None:
        idir = self._dir(instance_id)
        async with self._lock(instance_id):
            if not idir.has_disks() or not self._mine(idir):
                return
            await self._ensure_off(idir)
            drain = self._drains.pop(instance_id, None)
            if drain is not None:
                await drain.stop()
            self._set_owner(idir, to_host)
        log.info("instance %s handed over to %s", instance_id, to_host)

    async def claim(self, instance_id: str, from_host: str, force: bool) -> bool:
        idir = self._dir(instance_id)
        async with self._lock(instance_id):
            if not idir.has_disks():
                return True
            if self._mine(idir):
                return True
            if not force:
                return False
            # Evacuation: the source node is down, but on this machine its QEMU may still run: stop it first,
            # so that two guests never write the same disks.
            for slot in idir.slots():
                if process.pid_of(slot) is not None:
                    await self._quit(slot)
            self._set_owner(idir, self.host)
        log.info("instance %s taken over from %s", instance_id, from_host)
        return True

    async def prepare_incoming(self, spec: Spec, address: str) -> str:
        base = self._dir(spec["id"])
        async with self._lock(spec["id"]):
            if not base.has_disks():
                raise DriverError(f"the files of instance {base.uuid} are not in the shared instances path",
                                  permanent=True)
            if self._mine(base):
                raise DriverError(f"instance {base.uuid} is already on this host", permanent=True)
            live = self._live(base)
            if live is None:
                # The exact devices the source runs with: the migration stream only fits those.
                launch = base.read_launch() or spec
                await self._wait_taps(launch)
                live = self._free_slot(base)
                await process.start(live, await self._argv(live, launch, incoming="defer"), self.netns)
                await self._ensure_drain(live)
            try:
                return await migration.listen(live, address)
            except DriverError:
                await self._quit(live)  # a QEMU that cannot listen waits for nothing
                raise

    async def migrate_out(self, instance_id: str, uri: str, to_host: str, timeout: float) -> None:
        base = self._dir(instance_id)
        async with self._lock(instance_id):
            idir = self._running(base)
            info = await migration.send(idir, uri, timeout)
            log.info("instance %s live-migrated to %s in %s ms (downtime %s ms)", instance_id, to_host,
                     info.get("total-time"), info.get("downtime"))
            # The destination runs the guest now; ours is paused (postmigrate) and goes.
            await self._quit(idir)
            drain = self._drains.pop(instance_id, None)
            if drain is not None:
                await drain.stop()
            self._set_owner(base, to_host)
