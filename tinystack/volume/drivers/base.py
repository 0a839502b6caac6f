"""The volume driver boundary: what the volume agent asks of a storage backend, keyed only by volume and snapshot ids.

Paths and backend details never leave a driver except through ``volume_path``, which compute nodes open directly.
Every method is idempotent: asking for what is already there succeeds without doing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

GiB = 1024**3

# A volume document's ``source``: {"type": "blank"} | {"type": "volume", "id"} | {"type": "snapshot", "id"} |
# {"type": "image", "id", "disk_format"} (docs/contracts.md).
Source = dict[str, Any]


class DriverError(RuntimeError):
    """An operation failed. ``permanent``: retrying cannot help (the image does not fit, the image is gone)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Capacity:
    """The backend's size as heartbeats report it, in whole GiB (rounded down)."""

    capacity_gb: int
    free_gb: int


def size_gb(size_bytes: int) -> int:
    """Whole GiB that hold ``size_bytes`` (rounded up: a 1.5 GiB file is reported as a 2 GB volume)."""
    return -(-size_bytes // GiB)


class Exporter(Protocol):
    """What serves volume files to other machines, one export per attachment (drivers/nbd.py; a fake in tests).
    ``export`` is a ``drivers.nbd.Export``."""

    async def exports(self) -> dict[str, str]:
        """Attachment id -> the volume file of every export served now."""

    async def ensure(self, export: Any, path: str) -> None:
        """Serve ``path`` as ``export``; nothing when it is served already at the file's size. An export of a
        file that has grown is served again (its clients reconnect and see the new size on their next
        connection)."""

    async def remove(self, attachment_id: str) -> None:
        """End the attachment's export; nothing when there is none."""

    async def stop(self) -> None:
        """End every export (the agent's ``stop(cleanup=True)``)."""

    def watch(self, on_exit: Callable[[], None]) -> None:
        """Call ``on_exit`` on the event loop whenever whatever serves the exports dies unasked (from now on, and
        after each restart), so the agent serves them again at once."""


class VolumeDriver(Protocol):
    async def init_host(self) -> None:
        """Prepare the backend (directories) and drop what a crash left half-made. Called once before anything
        else; cheap and idempotent. Nothing half-made is ever listed or reported as existing."""

    async def capacity(self) -> Capacity:
        """Total and free space of the backend."""

    async def list_volumes(self) -> list[str]:
        """Ids of every complete volume the backend holds (so garbage can be removed and a restart adopts them)."""

    async def list_snapshots(self) -> list[str]:
        """Ids of every complete snapshot the backend holds."""

    async def volume_size(self, volume_id: str) -> int | None:
        """The volume's size in bytes, or None when the backend has no complete volume of that id."""

    async def snapshot_size(self, snapshot_id: str) -> int | None:
        """The snapshot's size in bytes, or None when it does not exist (yet)."""

    async def create_volume(self, volume_id: str, size_gb: int, source: Source) -> None:
        """Make the volume from ``source``, ``size_gb`` GiB large, and only then make it visible (a crash leaves
        nothing that looks complete). Does nothing when the volume exists: an existing volume is never rewritten.
        A source volume or snapshot that does not exist raises ``DriverError``; an image larger than ``size_gb``
        or one that cannot be read raises a permanent ``DriverError``."""

    async def copy_volume(self, volume_id: str, size_gb: int, source: VolumeDriver, source_id: str) -> None:
        """Make the volume a copy of ``source_id`` held by ``source``, another backend of this node (a migration),
        and only then make it visible. Does nothing when the volume exists; the source missing raises
        ``DriverError``."""

    async def extend_volume(self, volume_id: str, size_gb: int) -> None:
        """Grow the volume to ``size_gb`` GiB; never shrinks (a larger volume is left as it is)."""

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        """Copy the volume as it is now into the snapshot; does nothing when the snapshot exists. The volume
        missing raises ``DriverError``."""

    async def delete_volume(self, volume_id: str) -> None:
        """Remove the volume's data; succeeds when it is already gone."""

    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Remove the snapshot's data; succeeds when it is already gone."""

    async def upload_volume(self, volume_id: str, image_id: str, disk_format: str) -> None:
        """Convert the volume to ``disk_format`` and store it as the data of the existing image ``image_id``
        (image API, service credentials). An image that already has data counts as done (a retry after the
        upload went through); an image that is gone raises a permanent ``DriverError``."""

    def volume_path(self, volume_id: str) -> str:
        """Where compute nodes open the volume (raw); a name only, the volume need not exist."""
