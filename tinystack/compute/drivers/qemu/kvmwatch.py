"""Guests that KVM fails after they started: a guest started under KVM is watched through its first seconds,
and one stopped with a KVM internal error makes the node TCG-only and starts again under TCG (``accel.py``)."""

from __future__ import annotations

import asyncio
import logging
import time

from tinystack.compute.drivers.base import DriverError, Spec
from tinystack.compute.drivers.qemu import accel, process, qmp
from tinystack.compute.drivers.qemu.layout import InstanceDir
from tinystack.compute.drivers.qemu.ownership import Ownership

log = logging.getLogger(__name__)

# How long, and how often, a guest started under KVM is watched for a KVM internal error.
KVM_WATCH_SECONDS = 30.0
KVM_WATCH_INTERVAL = 0.5
KVM_FAULT = ("the guest stopped with a KVM internal error: this host's KVM cannot run it "
             "([compute] kvm = on; auto falls back to TCG)")


class KvmWatch(Ownership):
    """Mixin of ``QemuDriver``; the restart goes through ``_boot``, which the power part (``power.py``) provides."""

    accel: accel.Accelerator
    _watches: dict[str, asyncio.Task[None]]

    async def _boot(self, base: InstanceDir, spec: Spec) -> None:
        raise NotImplementedError

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
