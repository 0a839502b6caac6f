"""Where an instance's files live: ``<instances_path>/<uuid>/``, one fixed name per purpose.

The process files (pidfile, QMP, serial and VNC sockets) come in two *slots*: during a live migration between
two nodes sharing the instances path, the source's QEMU and the destination's run at once, each in its own
slot (QEMU removes its pidfile and sockets when it exits, so they could not share names). Slot 0 keeps the
names a single node always used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tinystack.compute.drivers.qemu.volumes import without_keys
from tinystack.core import sockpath

SLOTS = 2


@dataclass(frozen=True)
class InstanceDir:
    path: Path
    slot: int = 0

    @property
    def uuid(self) -> str:
        return self.path.name

    def slots(self) -> list[InstanceDir]:
        return [replace(self, slot=i) for i in range(SLOTS)]

    def _name(self, stem: str, ext: str) -> str:
        return f"{stem}.{ext}" if self.slot == 0 else f"{stem}-{self.slot}.{ext}"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # Disks
    @property
    def disk(self) -> Path:
        return self.path / "disk"  # root: qcow2 overlay on the cached base

    @property
    def volume_root(self) -> Path:
        """A volume-backed instance has no root disk file: this names the volume it boots from instead."""
        return self.path / "disk.root-volume"

    def has_disks(self) -> bool:
        """Whether the instance was created here: it has its root disk, or boots from a volume."""
        return self.disk.exists() or self.volume_root.exists()

    @property
    def ephemeral(self) -> Path:
        return self.path / "disk.eph0"

    @property
    def swap(self) -> Path:
        return self.path / "disk.swap"

    @property
    def config_drive(self) -> Path:
        return self.path / "disk.config"

    @property
    def rescue_disk(self) -> Path:
        return self.path / "disk.rescue"

    # Process and its sockets
    @property
    def pidfile(self) -> Path:
        return self.path / self._name("qemu", "pid")

    @property
    def owner_file(self) -> Path:
        """The host whose agent holds the instance (shared instance storage: every node sees every dir)."""
        return self.path / "host"

    @property
    def run_dir(self) -> Path:
        """Where the sockets are: the instance dir, unless that makes a socket path longer than a unix
        socket allows (107 bytes); then a short directory derived from it (the same after an agent restart)."""
        # The rule every instance was started under (room left for the longer socket names): kept, so that an
        # upgraded agent finds the sockets of guests already running.
        return sockpath.fitting_dir(self.path, "serial.sock", limit=99)

    @property
    def qmp(self) -> Path:
        return self.run_dir / self._name("qmp", "sock")

    @property
    def serial(self) -> Path:
        return self.run_dir / self._name("serial", "sock")

    @property
    def serial_mux(self) -> Path:
        """The interactive serial console: the agent's console drain serves it (drivers/qemu/console.py)."""
        return self.run_dir / self._name("serial-mux", "sock")

    @property
    def vnc(self) -> Path:
        return self.run_dir / self._name("vnc", "sock")

    @property
    def console_log(self) -> Path:
        return self.path / "console.log"

    @property
    def memory_save(self) -> Path:
        return self.path / "memory.save"

    @property
    def launch_file(self) -> Path:
        return self.path / "launch.json"  # the spec the running guest was started from

    def read_launch(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.launch_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_launch(self, spec: dict[str, Any]) -> None:
        """Keep ``spec`` as the launch record; NBD keys go to their own 0600 key files, never into it."""
        tmp = self.launch_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(without_keys(spec, self.path)))
        os.replace(tmp, self.launch_file)
