"""The virt driver boundary: what the compute agent asks of a hypervisor, keyed only by instance uuid.

Platform ids (pids, socket paths, QEMU device names) never leave a driver. ``spec`` is the ``instance``
document of docs/contracts.md, as the controller sent it. Every method is idempotent: asking for the state
the guest is already in succeeds without doing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# Nova's power_state integers (nova/compute/power_state.py).
NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED = 0, 1, 3, 4, 6, 7

Spec = dict[str, Any]


class DriverError(RuntimeError):
    """An operation failed. ``permanent``: retrying the same spec cannot help (bad image, disk too small)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class InstanceInfo:
    """What the host has for one instance. ``exists``: its disks are there (it may be powered off)."""

    exists: bool
    power_state: int = NOSTATE
    fault: str | None = None  # why a CRASHED guest stopped, when the driver can tell


@dataclass(frozen=True)
class HostInfo:
    """The node's capacity as the ``node`` status document reports it."""

    vcpus: int
    memory_mb: int
    local_gb: int
    hypervisor_type: str
    hypervisor_version: int
    cpu_info: dict[str, Any] = field(default_factory=dict)


class ComputeDriver(Protocol):
    async def init_host(self) -> None:
        """Prepare the host (directories, probes). Called once before anything else; cheap and idempotent."""

    async def host_info(self) -> HostInfo:
        """Capacity of this node."""

    async def list_instances(self) -> list[str]:
        """Uuids of every instance that has anything on this host (running or not)."""

    async def get_info(self, instance_id: str) -> InstanceInfo:
        """The instance's state on the host; ``exists=False`` when nothing of it is here."""

    async def create(self, spec: Spec) -> None:
        """Build the instance's disks (root overlay, ephemeral, swap, config drive) without starting it.
        Succeeds without change when they exist. Raises ``DriverError`` (permanent) when the spec cannot fit."""

    async def power_on(self, spec: Spec) -> None:
        """Start the guest (fresh boot, or resume from a suspend image), in rescue layout when
        ``spec["rescue"]``. A fresh boot has ``spec["volumes"]`` as disks after the instance's own; a resume has
        the devices it was suspended with. Returns once the hypervisor runs it; succeeds when it is already
        running."""

    async def power_off(self, instance_id: str, timeout: float) -> None:
        """Ask the guest to shut down; after ``timeout`` seconds stop it hard. Succeeds when already off.
        Drops a suspend image if there is one."""

    async def pause(self, instance_id: str) -> None:
        """Freeze the running guest's vCPUs (memory stays). Succeeds when already paused."""

    async def unpause(self, instance_id: str) -> None:
        """Let a paused guest run again."""

    async def suspend(self, instance_id: str) -> None:
        """Save the guest's memory and device state to a file and stop the hypervisor process."""

    async def reboot(self, spec: Spec, hard: bool) -> None:
        """Hard: reset now. Soft: ask the guest to shut down, then boot it again; if it does not go down
        within the power-off timeout, reset it."""

    async def rebuild_disks(self, spec: Spec, recreate_root: bool) -> None:
        """With the guest off: apply ``spec``'s image and flavor to the disks. ``recreate_root`` (rebuild):
        a fresh root disk from the image; otherwise a bigger flavor grows it. Ephemeral and swap follow the
        flavor; the config drive is rebuilt. Never shrinks a disk."""

    async def snapshot(self, instance_id: str, image_id: str) -> None:
        """Upload a consistent copy of the root disk as the data of the (already created) image ``image_id``."""

    async def unrescue(self, instance_id: str) -> None:
        """With the guest off: drop the rescue disk so the next ``power_on`` boots the original disks."""

    async def destroy(self, instance_id: str) -> None:
        """Stop the guest hard and remove everything of it on this host. Succeeds when it is already gone."""

    async def attach_volume(self, instance_id: str, volume: dict[str, Any]) -> None:
        """Hotplug ``volume`` (an entry of the document's ``volumes``: volume_id, serial, path, format,
        read_only) into the running guest as a virtio disk with that serial. Succeeds when the guest has it
        already; ``DriverError`` when the guest is not running or the hypervisor refuses the file."""

    async def detach_volume(self, instance_id: str, volume_id: str) -> None:
        """Unplug the volume from the running guest and wait, for a bounded time, until the guest has released
        it (the guest must acknowledge the unplug); then the hypervisor no longer has the file open. Succeeds
        when the guest does not have it; ``DriverError`` on timeout (the unplug may still finish later)."""

    async def extend_volume(self, instance_id: str, volume: dict[str, Any]) -> None:
        """Grow the running guest's disk of ``volume`` (attached) to ``volume["size_gb"]`` GiB, so the guest sees
        the new size at once (a virtio capacity change). Nothing when the disk is that large already or the guest
        is not running (its next boot opens the grown volume); ``DriverError`` when the volume's file or export
        does not have the new size yet, or the hypervisor refuses."""

    async def attached_volumes(self, instance_id: str) -> list[str]:
        """The volume ids the running guest's hypervisor has now, in attach order, found by asking the
        hypervisor (so an agent restart sees them); ``[]`` when the guest is not running."""

    def console_log_path(self, instance_id: str) -> str:
        """Where the serial console log (capped in size) is, for ``os-getConsoleOutput``; may not exist yet."""

    async def diagnostics(self, instance_id: str) -> dict[str, Any]:
        """Nova's standard diagnostics (v2.48 shape) for a running guest; ``{}`` when it is not running."""

    async def close(self, stop_guests: bool) -> None:
        """Release driver resources. ``stop_guests``: also stop every guest process (disks are kept)."""

    # Moving a guest between nodes that share the instances path (shared instance storage, as Nova treats NFS):
    # the files stay where they are, the node that holds them changes. ``list_instances`` and ``get_info`` see
    # only what this node holds.

    async def release(self, instance_id: str, to_host: str) -> None:
        """Cold move out: stop the guest hard if it still runs (the agent powers it off gently first) and hand
        its files to ``to_host``. Succeeds when this node no longer holds it."""

    async def claim(self, instance_id: str, from_host: str, force: bool) -> bool:
        """Cold move in: True once this node holds the instance's files (or there are none to wait for); False
        while ``from_host`` has not handed them over. ``force`` (evacuation, ``from_host`` is down) takes them
        anyway, stopping whatever process of the guest still runs."""

    async def prepare_incoming(self, spec: Spec, address: str) -> str:
        """Live-migration destination: start the guest's hypervisor with the instance's devices, waiting for its
        state on ``address``; return the URI the source sends to. Idempotent while it waits."""

    async def migrate_out(self, instance_id: str, uri: str, to_host: str, timeout: float) -> None:
        """Live-migration source: send the running guest to ``uri`` and wait until the destination runs it,
        then stop the local process and hand the files to ``to_host``. On failure (or after ``timeout``
        seconds) the guest keeps running here and ``DriverError`` says why."""
