"""An in-memory volume driver: sizes only, no files. For fast tests and scale runs, never for real data.

It keeps the file driver's rules (a volume is made once from its source, grows but never shrinks, an image must
fit) so the agent's logic is exercised as it is; ``fail`` makes the next calls of one operation raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tinystack.volume.drivers.base import Capacity, DriverError, GiB, Source, VolumeDriver, size_gb


class FakeVolumeDriver:
    def __init__(self, capacity_gb: int = 1000, images: dict[str, int] | None = None, delay: float = 0.0,
                 path: str = "/fake/volumes") -> None:
        self.capacity_gb = capacity_gb
        self.images: dict[str, int] = dict(images or {})  # image id -> virtual size in bytes
        self.delay = delay  # seconds each operation that makes data takes
        self.path = path
        self.volumes: dict[str, int] = {}
        self.snapshots: dict[str, int] = {}
        self.uploads: list[tuple[str, str, str]] = []  # (volume, image, disk_format)
        self.calls: list[tuple[str, str]] = []
        self.on_exit: Callable[[], None] | None = None
        self._failures: dict[str, list[DriverError]] = {}

    def fail(self, op: str, error: DriverError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``op`` (a method name) raise ``error``."""
        self._failures.setdefault(op, []).extend([error] * times)

    async def _step(self, op: str, key: str) -> None:
        self.calls.append((op, key))
        if self.delay:
            await asyncio.sleep(self.delay)
        pending = self._failures.get(op)
        if pending:
            raise pending.pop(0)

    async def init_host(self) -> None:
        self.calls.append(("init_host", ""))

    async def capacity(self) -> Capacity:
        used = sum(size_gb(s) for s in (*self.volumes.values(), *self.snapshots.values()))
        return Capacity(capacity_gb=self.capacity_gb, free_gb=max(0, self.capacity_gb - used))

    async def list_volumes(self) -> list[str]:
        return sorted(self.volumes)

    async def list_snapshots(self) -> list[str]:
        return sorted(self.snapshots)

    async def volume_size(self, volume_id: str) -> int | None:
        return self.volumes.get(volume_id)

    async def snapshot_size(self, snapshot_id: str) -> int | None:
        return self.snapshots.get(snapshot_id)

    async def create_volume(self, volume_id: str, size_gb: int, source: Source) -> None:
        if volume_id in self.volumes:
            return
        await self._step("create_volume", volume_id)
        kind, src = source.get("type"), str(source.get("id") or "")
        wanted = size_gb * GiB
        if kind == "blank":
            size = 0
        elif kind in ("volume", "snapshot"):
            found = (self.volumes if kind == "volume" else self.snapshots).get(src)
            if found is None:
                raise DriverError(f"source {kind} {src} not found")
            size = found
        elif kind == "image":
            if src not in self.images:
                raise DriverError(f"image {src} not found", permanent=True)
            size = self.images[src]
            if size > wanted:
                raise DriverError(f"Image virtual size is {-(-size // GiB)}GB and doesn't fit in a volume of size "
                                  f"{size_gb}GB.", permanent=True)
        else:
            raise DriverError(f"unknown volume source type {kind!r}", permanent=True)
        if size > wanted:
            raise DriverError(f"Source {kind} is larger than {size_gb}GB", permanent=True)
        self.volumes[volume_id] = wanted

    async def copy_volume(self, volume_id: str, size_gb: int, source: VolumeDriver, source_id: str) -> None:
        if volume_id in self.volumes:
            return
        size = await source.volume_size(source_id)
        if size is None:
            raise DriverError(f"source volume {source_id} not found")
        await self._step("copy_volume", volume_id)
        self.volumes[volume_id] = max(size, size_gb * GiB)

    async def extend_volume(self, volume_id: str, size_gb: int) -> None:
        if volume_id not in self.volumes:
            raise DriverError(f"volume {volume_id} not found")
        await self._step("extend_volume", volume_id)
        self.volumes[volume_id] = max(self.volumes[volume_id], size_gb * GiB)

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        if snapshot_id in self.snapshots:
            return
        if volume_id not in self.volumes:
            raise DriverError(f"volume {volume_id} not found")
        await self._step("create_snapshot", snapshot_id)
        self.snapshots[snapshot_id] = self.volumes[volume_id]

    async def delete_volume(self, volume_id: str) -> None:
        await self._step("delete_volume", volume_id)
        self.volumes.pop(volume_id, None)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self._step("delete_snapshot", snapshot_id)
        self.snapshots.pop(snapshot_id, None)

    async def upload_volume(self, volume_id: str, image_id: str, disk_format: str) -> None:
        if volume_id not in self.volumes:
            raise DriverError(f"volume {volume_id} not found")
        await self._step("upload_volume", volume_id)
        if image_id not in self.images:  # an image with data already counts as done, as with the image API's 409
            self.images[image_id] = self.volumes[volume_id]
            self.uploads.append((volume_id, image_id, disk_format))

    def volume_path(self, volume_id: str) -> str:
        return f"{self.path}/volume-{volume_id}"


class FakeExporter:
    """Exports in memory (``exports``: attachment id -> (path, export)), for tests of the agent's desired state."""

    def __init__(self) -> None:
        self.served: dict[str, tuple[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    async def exports(self) -> dict[str, str]:
        return {a: path for a, (path, _) in self.served.items()}

    async def ensure(self, export: Any, path: str) -> None:
        if export.attachment_id not in self.served:
            self.calls.append(("ensure", export.attachment_id))
            self.served[export.attachment_id] = (path, export)

    async def remove(self, attachment_id: str) -> None:
        if self.served.pop(attachment_id, None) is not None:
            self.calls.append(("remove", attachment_id))

    async def stop(self) -> None:
        self.served.clear()

    def watch(self, on_exit: Callable[[], None]) -> None:
        self.on_exit = on_exit

    def die(self) -> None:
        """What a killed export daemon looks like: nothing is served, and the watcher hears of it."""
        self.served.clear()
        if self.on_exit is not None:
            self.on_exit()
