"""Registers the default guest image at first start: kernel (aki), ramdisk (ari) and disk (ami, with
``kernel_id``/``ramdisk_id``), public, through the image service. Never holds up the cloud's start: with no
cached build it builds in the background and registers when done."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tinystack.core.auth import RequestContext
from tinystack.core.lease import Lease, exclusive
from tinystack.guest import build, settings

log = logging.getLogger(__name__)

# Registration acts as the cloud itself: admin, no project, so the public images belong to no tenant.
CONTEXT = RequestContext(user_id="tinystack-guest", user_name="tinystack", roles=("admin",), system_scope="all")
CHUNK = 1 << 20
_background: set[asyncio.Task[None]] = set()


async def ensure_default_image(rt: Any) -> None:
    """Make sure the three public images exist; returns at once when a build is needed (done in background)."""
    conf = settings.load(rt.config)
    images = rt.services.get("image")
    if images is None or not conf.auto_build:
        return
    if _find(images, conf.image_name, "ami") is not None:
        return
    image = build.cached(conf.cache_dir)
    if image is not None:
        await register(images, image, conf.image_name)
        return
    task = asyncio.create_task(_build_then_register(images, conf))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def stop_building() -> None:
    """Cancel a background build and wait for it to end (its host commands killed), before the services it
    would register with stop."""
    tasks = list(_background)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _build_then_register(images: Any, conf: settings.GuestSettings) -> None:
    try:
        log.info("building the default guest image in %s", conf.cache_dir)
        image = await build.build(conf.cache_dir, conf.kernel_package)
        await register(images, image, conf.image_name)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("could not build or register the default guest image")


def _find(images: Any, name: str, disk_format: str) -> Any | None:
    found, _ = images.list_images(CONTEXT, {"name": name, "visibility": "public", "limit": "10"}, lambda _n: [])
    for image in found:
        if image.disk_format == disk_format and image.status == "active":
            return image
    return None


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:
        while block := await asyncio.to_thread(f.read, CHUNK):
            yield block


async def _upload(images: Any, name: str, fmt: str, path: Path, properties: dict[str, str]) -> str:
    """An active public image ``name`` with the data at ``path``; an existing active one is reused."""
    existing = _find(images, name, fmt)
    if existing is not None:
        return str(existing.id)
    image = images.create(CONTEXT, {"name": name, "disk_format": fmt, "container_format": fmt,
                                    "visibility": "public", **properties})
    try:
        await images.data.upload(CONTEXT, image.id, _chunks(path), size_hint=path.stat().st_size)
    except BaseException:
        await images.delete(CONTEXT, image.id)
        raise
    return str(image.id)


async def register(images: Any, image: build.BuiltImage, name: str) -> str:
    """Upload the build as ``<name>-kernel``, ``<name>-ramdisk`` and ``<name>``; returns the ami's id.

    API processes starting on one database register one at a time: each finds what another registered."""
    tag = {"tinystack_guest_build": str(image.manifest["key"])}
    async with exclusive(Lease(images.db, "guest.register")):
        kernel_id = await _upload(images, f"{name}-kernel", "aki", image.kernel, tag)
        ramdisk_id = await _upload(images, f"{name}-ramdisk", "ari", image.ramdisk, tag)
        ami_id = await _upload(images, name, "ami", image.disk, {
            **tag, "kernel_id": kernel_id, "ramdisk_id": ramdisk_id, "os_distro": "cirros", "os_type": "linux",
            "os_admin_user": "cirros", "hw_disk_bus": "virtio", "hw_vif_model": "virtio"})
    log.info("default guest image %s registered: %s (kernel %s, ramdisk %s)", name, ami_id, kernel_id, ramdisk_id)
    return ami_id
