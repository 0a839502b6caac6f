"""Volumes as raw sparse files: ``volume-<id>`` and ``snapshot-<id>`` in one directory that compute nodes open.

New files are written under a ``.part-`` name and renamed when complete, so a crash never leaves a half-made
volume that looks done; ``init_host`` removes what such a crash left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from tinystack.core import host
from tinystack.core.host import CommandFailed
from tinystack.volume.drivers import imageapi
from tinystack.volume.drivers.base import Capacity, DriverError, GiB, Source, VolumeDriver
from tinystack.volume.drivers.base import size_gb as _gb

log = logging.getLogger(__name__)

TMP_PREFIX = ".part-"
# Names the node that owns the directory. Nodes of one machine share it; only the owner removes files it did
# not make (garbage from a sync, leftovers of a crash), so another node's agent can never wipe the volumes.
OWNER_FILE = ".host"
COPY_TIMEOUT = 3600.0

# Glance disk formats, as qemu-img names them.
QEMU_FORMATS = {"raw": "raw", "ami": "raw", "aki": "raw", "ari": "raw", "iso": "raw", "qcow2": "qcow2",
                "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx", "ploop": "parallels"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def _check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise DriverError(f"invalid {kind} id {value!r}", permanent=True)
    return value


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileDriver:
    def __init__(self, volumes_path: Path, auth: imageapi.AuthFn, host: str, *, image_timeout: float = 600.0,
                 copy_timeout: float = COPY_TIMEOUT) -> None:
        self.root = Path(volumes_path)
        self._auth = auth
        self.host = host
        self.image_timeout = image_timeout
        self.copy_timeout = copy_timeout
        self.owner = True

    def _volume(self, volume_id: str) -> Path:
        return self.root / f"volume-{_check_id('volume', volume_id)}"

    def _snapshot(self, snapshot_id: str) -> Path:
        return self.root / f"snapshot-{_check_id('snapshot', snapshot_id)}"

    def _part(self, name: str) -> Path:
        return self.root / f"{TMP_PREFIX}{name}"

    def volume_path(self, volume_id: str) -> str:
        return str(self._volume(volume_id))

    # -- host -------------------------------------------------------------------------------------------

    async def init_host(self) -> None:
        if not self.root.is_dir():
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
        marker = self.root / OWNER_FILE
        try:
            owner = marker.read_text().strip()
        except FileNotFoundError:
            owner = ""
        if not owner:
            marker.write_text(self.host + "\n")
            owner = self.host
        self.owner = owner == self.host
        if not self.owner:
            log.warning("%s belongs to volume host %s: this agent (%s) lists none of its files and removes nothing "
                        "it did not make (remove %s to hand the directory over)", self.root, owner, self.host, marker)
            return
        for leftover in self.root.glob(f"{TMP_PREFIX}*"):
            log.info("removing %s, left by an interrupted copy", leftover)
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    async def capacity(self) -> Capacity:
        st = await asyncio.to_thread(os.statvfs, self.root)
        return Capacity(capacity_gb=st.f_blocks * st.f_frsize // GiB, free_gb=st.f_bavail * st.f_frsize // GiB)

    def _list(self, prefix: str) -> list[str]:
        if not self.owner or not self.root.is_dir():
            return []
        return sorted(p.name[len(prefix):] for p in self.root.glob(f"{prefix}*") if p.is_file()
                      and _ID.match(p.name[len(prefix):]))

    async def list_volumes(self) -> list[str]:
        return self._list("volume-")

    async def list_snapshots(self) -> list[str]:
        return self._list("snapshot-")

    @staticmethod
    def _size(path: Path) -> int | None:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return None

    async def volume_size(self, volume_id: str) -> int | None:
        return self._size(self._volume(volume_id))

    async def snapshot_size(self, snapshot_id: str) -> int | None:
        return self._size(self._snapshot(snapshot_id))

    # -- making files ---------------------------------------------------------------------------------

    async def _publish(self, part: Path, final: Path) -> None:
        """Make ``part`` the complete file ``final``: owner-only, on disk, then renamed in one step."""
        os.chmod(part, 0o600)
        await asyncio.to_thread(_fsync, part)
        os.replace(part, final)

    async def _copy(self, src: Path, dest: Path) -> None:
        # reflink where the filesystem shares blocks (btrfs, xfs), else a copy that keeps holes.
        await host.run(["cp", "--sparse=always", "--reflink=auto", str(src), str(dest)], timeout=self.copy_timeout)

    @staticmethod
    def _grow(path: Path, size_gb: int) -> None:
        if path.stat().st_size < size_gb * GiB:
            os.truncate(path, size_gb * GiB)

    async def create_volume(self, volume_id: str, size_gb: int, source: Source) -> None:
        final = self._volume(volume_id)
        if final.exists():
            return
        kind = source.get("type")
        part = self._part(final.name)
        part.unlink(missing_ok=True)
        try:
            if kind == "blank":
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
            elif kind in ("volume", "snapshot"):
                src = self._volume(source.get("id", "")) if kind == "volume" else self._snapshot(source.get("id", ""))
                size = self._size(src)
                if size is None:
                    raise DriverError(f"source {kind} {source.get('id')} not found")
                if size > size_gb * GiB:
                    raise DriverError(f"Source {kind} size is {_gb(size)}GB and doesn't fit in a volume of size "
                                      f"{size_gb}GB.", permanent=True)
                await self._copy(src, part)
            elif kind == "image":
                await self._from_image(volume_id, size_gb, source, part)
            else:
                raise DriverError(f"unknown volume source type {kind!r}", permanent=True)
            self._grow(part, size_gb)
            await self._publish(part, final)
        finally:
            part.unlink(missing_ok=True)
        log.info("volume %s created (%d GB, from %s)", volume_id, size_gb, kind)

    async def _from_image(self, volume_id: str, size_gb: int, source: Source, part: Path) -> None:
        image_id = _check_id("image", source.get("id", ""))
        disk_format = str(source.get("disk_format") or "").lower()
        if not disk_format:
            disk_format = str((await imageapi.image_meta(self._auth, image_id)).get("disk_format") or "raw").lower()
        fmt = QEMU_FORMATS.get(disk_format)
        if fmt is None:
            raise DriverError(f"image {image_id}: disk_format {disk_format!r} cannot be written to a volume",
                              permanent=True)
        download = self._part(f"image-{volume_id}")
        try:
            await imageapi.download(self._auth, image_id, download, self.image_timeout)
            info = await self._info(download, fmt, image_id)
            if info.get("backing-filename"):
                raise DriverError(f"image {image_id} refers to a backing file; refused", permanent=True)
            vsize = int(info.get("virtual-size") or 0)
            if vsize > size_gb * GiB:
                raise DriverError(f"Image virtual size is {_gb(vsize)}GB and doesn't fit in a volume of size "
                                  f"{size_gb}GB.", permanent=True)
            try:
                await host.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(download), str(part)],
                               timeout=self.image_timeout)
            except CommandFailed as exc:
                raise DriverError(f"image {image_id}: conversion to raw failed: {exc}") from exc
        finally:
            download.unlink(missing_ok=True)

    @staticmethod
    async def _info(path: Path, fmt: str, image_id: str) -> dict[str, Any]:
        try:
            res = await host.run(["qemu-img", "info", "--output", "json", "-f", fmt, str(path)], timeout=60)
        except CommandFailed as exc:
            raise DriverError(f"image {image_id} is not a readable {fmt} image: {exc}", permanent=True) from exc
        data: dict[str, Any] = json.loads(res.stdout)
        return data

    async def copy_volume(self, volume_id: str, size_gb: int, source: VolumeDriver, source_id: str) -> None:
        final = self._volume(volume_id)
        if final.exists():
            return
        # Backends of one node are directories of one machine: the source's file is read where it is.
        src = Path(source.volume_path(source_id))
        if not src.is_file():
            raise DriverError(f"source volume {source_id} not found")
        part = self._part(final.name)
        part.unlink(missing_ok=True)
        try:
            await self._copy(src, part)
            self._grow(part, size_gb)
            await self._publish(part, final)
        finally:
            part.unlink(missing_ok=True)
        log.info("volume %s copied from %s", volume_id, src)

    async def extend_volume(self, volume_id: str, size_gb: int) -> None:
        path = self._volume(volume_id)
        if not path.exists():
            raise DriverError(f"volume {volume_id} not found")
        self._grow(path, size_gb)

    async def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        final = self._snapshot(snapshot_id)
        if final.exists():
            return
        src = self._volume(volume_id)
        if not src.exists():
            raise DriverError(f"volume {volume_id} not found")
        part = self._part(final.name)
        part.unlink(missing_ok=True)
        try:
            await self._copy(src, part)
            await self._publish(part, final)
        finally:
            part.unlink(missing_ok=True)
        log.info("snapshot %s of volume %s created", snapshot_id, volume_id)

    # -- removing and uploading ---------------------------------------------------------------------------

    async def delete_volume(self, volume_id: str) -> None:
        path = self._volume(volume_id)
        path.unlink(missing_ok=True)
        self._part(path.name).unlink(missing_ok=True)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        path = self._snapshot(snapshot_id)
        path.unlink(missing_ok=True)
        self._part(path.name).unlink(missing_ok=True)

    async def upload_volume(self, volume_id: str, image_id: str, disk_format: str) -> None:
        _check_id("image", image_id)
        src = self._volume(volume_id)
        if not src.exists():
            raise DriverError(f"volume {volume_id} not found")
        fmt = QEMU_FORMATS.get(disk_format.lower())
        if fmt is None:
            raise DriverError(f"cannot upload a volume as disk_format {disk_format!r}", permanent=True)
        part = self._part(f"upload-{volume_id}")
        part.unlink(missing_ok=True)
        try:
            if fmt == "raw":
                await self._copy(src, part)
            else:
                # -U: a running guest may hold the volume's write lock; reading it is what Cinder's force upload does.
                await host.run(["qemu-img", "convert", "-U", "-f", "raw", "-O", fmt, str(src), str(part)],
                               timeout=self.copy_timeout)
            await imageapi.upload(self._auth, image_id, part, self.copy_timeout)
        finally:
            part.unlink(missing_ok=True)
        log.info("volume %s uploaded to image %s as %s", volume_id, image_id, disk_format)
