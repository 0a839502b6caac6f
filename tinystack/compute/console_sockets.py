"""Where an instance's console sockets are on the node that runs it: QEMU's VNC socket and the agent's serial mux
(docs/consoles.md, "The node side"). Both the compute API (for a proxy on the same machine) and the agent's console
bridge (for a proxy on another) ask here."""

from __future__ import annotations

from pathlib import Path

from tinystack.compute.drivers.qemu import process
from tinystack.compute.drivers.qemu.layout import InstanceDir

KINDS = ("vnc", "serial")


def socket_path(instances_path: Path, instance_id: str, host: str, kind: str) -> Path:
    """The unix socket of ``kind`` (``vnc`` or ``serial``) for ``instance_id`` held by node ``host``."""
    idir = running_slot(InstanceDir(instances_path / instance_id), host)
    if kind == "vnc":
        return idir.vnc
    if kind == "serial":
        return idir.serial_mux
    raise ValueError(f"no console kind {kind!r}")


def running_slot(idir: InstanceDir, host: str) -> InstanceDir:
    """The slot whose QEMU runs: during a live migration both do, and the one in the holder's node namespace is
    the guest the user sees. Slot 0 when none is found here (a node on another machine)."""
    live = [(slot, pid) for slot in idir.slots() if (pid := process.pid_of(slot)) is not None]
    if len(live) > 1:
        live = [(slot, pid) for slot, pid in live if process.in_netns(pid, f"tsnode-{host}")] or live
    return live[0][0] if live else idir
