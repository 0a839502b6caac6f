"""Which host holds an instance's files, and which QEMU of it is this node's (its slot), on an instances path
that several nodes may share. The base of the driver's parts: instance dirs, per-instance locks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path

from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.qemu import process, qmp
from tinystack.compute.drivers.qemu.layout import InstanceDir

UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


class Ownership:
    """Mixin of ``QemuDriver``, which sets these attributes."""

    instances_path: Path
    # The node this driver runs for; empty: the instances path is this driver's alone (no owner files).
    host: str
    netns: str | None
    _locks: dict[str, asyncio.Lock]

    def _dir(self, instance_id: str) -> InstanceDir:
        if not UUID.match(instance_id):
            raise DriverError(f"invalid instance id {instance_id!r}", permanent=True)
        return InstanceDir(self.instances_path / instance_id)

    def _lock(self, instance_id: str) -> asyncio.Lock:
        return self._locks.setdefault(instance_id, asyncio.Lock())

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

    def _all_dirs(self) -> list[str]:
        if not self.instances_path.is_dir():
            return []
        return sorted(p.name for p in self.instances_path.iterdir() if p.is_dir() and UUID.match(p.name))

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

    @staticmethod
    async def _quit(idir: InstanceDir) -> None:
        with contextlib.suppress(DriverError):
            await qmp.execute(idir.qmp, "quit")
        if not await process.wait_gone(idir, 5):
            await process.kill(idir)
