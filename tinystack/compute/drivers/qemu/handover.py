"""Moving a guest between nodes that share the instances path: the source hands the instance dir over and the
destination takes it (cold, ``release``/``claim``), or QEMU streams the running guest over TCP (live,
``prepare_incoming``/``migrate_out``, with ``migration.py``)."""

from __future__ import annotations

import logging

from tinystack.compute.drivers.base import DriverError, Spec
from tinystack.compute.drivers.qemu import migration, process
from tinystack.compute.drivers.qemu.power import Power

log = logging.getLogger(__name__)


class Handover(Power):
    """Mixin of ``QemuDriver``."""

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
