"""Snapshot: the root disk, made consistent by pausing the guest, converted to qcow2 and uploaded to the
image service as the snapshot image's data."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.qemu import disks, qmp
from tinystack.compute.drivers.qemu import volumes as qvol
from tinystack.compute.drivers.qemu.ownership import Ownership
from tinystack.core import host
from tinystack.core.svcauth import ServiceAuth

log = logging.getLogger(__name__)


class Snapshots(Ownership):
    """Mixin of ``QemuDriver``, which sets ``_auth``."""

    _auth: Callable[[], ServiceAuth]

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
