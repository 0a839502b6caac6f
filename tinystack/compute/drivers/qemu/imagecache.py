"""Base images, downloaded once per image id over the image API with the service token and verified.

``<cache>/<image_id>`` holds the bytes, ``<image_id>.json`` what we know of them (format, virtual size).
Cleanup removes a base only when no instance uses it and it has not been used for ``max_age`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tinystack.compute.drivers.base import DriverError
from tinystack.core import host
from tinystack.core.svcauth import ServiceAuth

log = logging.getLogger(__name__)

# Formats QEMU opens as they are; others are converted to qcow2 once, in the cache.
_RAW = {"raw", "ami", "aki", "ari", "iso"}
_CONVERT = {"vmdk", "vdi", "vhd", "vhdx", "qcow"}


@dataclass(frozen=True)
class Base:
    path: Path
    format: str  # as QEMU names it: raw | qcow2
    virtual_size: int


class ImageCache:
    def __init__(self, root: Path, auth: Callable[[], ServiceAuth], max_age: float) -> None:
        self.root = root
        self._auth = auth
        self.max_age = max_age
        self._locks: dict[str, asyncio.Lock] = {}

    def _meta_path(self, image_id: str) -> Path:
        return self.root / f"{image_id}.json"

    def _cached(self, image_id: str) -> Base | None:
        try:
            meta = json.loads(self._meta_path(image_id).read_text())
        except (FileNotFoundError, ValueError):
            return None
        path = self.root / image_id
        if not path.exists():
            return None
        os.utime(self._meta_path(image_id))  # last use, for cleanup
        return Base(path, meta["format"], int(meta["virtual_size"]))

    async def get(self, image_id: str) -> Base:
        """The cached base for ``image_id``, downloading it first if needed."""
        if "/" in image_id or image_id.startswith("."):
            raise DriverError(f"invalid image id {image_id!r}", permanent=True)
        base = self._cached(image_id)
        if base is not None:
            return base
        lock = self._locks.setdefault(image_id, asyncio.Lock())
        async with lock:
            base = self._cached(image_id)
            if base is None:
                base = await self._download(image_id)
        return base

    async def _download(self, image_id: str) -> Base:
        self.root.mkdir(parents=True, exist_ok=True)
        auth = self._auth()
        url = await auth.endpoint("image")
        headers = {"X-Auth-Token": await auth.token()}
        # A name of this download's own: nodes sharing the instances path (shared instance storage) share this cache,
        # and two of them fetching one image at once must not write one file (the last rename wins, same bytes).
        part = self.root / f"{image_id}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part"
        try:
            started = time.monotonic()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=300)) as http:
                async with http.get(f"{url}/v2/images/{image_id}", headers=headers) as resp:
                    if resp.status == 404:
                        raise DriverError(f"image {image_id} not found", permanent=True)
                    if resp.status != 200:
                        raise DriverError(f"image API: GET image {image_id} gave {resp.status}")
                    image = await resp.json()
                if image.get("status") != "active":
                    raise DriverError(f"image {image_id} is {image.get('status')}, not active", permanent=True)
                md5 = hashlib.md5(usedforsecurity=False)
                async with http.get(f"{url}/v2/images/{image_id}/file", headers=headers) as resp:
                    if resp.status != 200:
                        raise DriverError(f"image API: download of image {image_id} gave {resp.status}")
                    with open(part, "wb") as f:
                        async for chunk in resp.content.iter_chunked(1 << 20):
                            md5.update(chunk)
                            f.write(chunk)
            if image.get("checksum") and md5.hexdigest() != image["checksum"]:
                part.unlink(missing_ok=True)
                raise DriverError(f"image {image_id}: checksum mismatch ({md5.hexdigest()} != {image['checksum']})")
            disk_format = (image.get("disk_format") or "raw").lower()
            path = self.root / image_id
            if disk_format == "qcow2" or disk_format in _CONVERT:
                info = await _info(part, "qcow2" if disk_format == "qcow2" else disk_format)
                if info.get("backing-filename"):
                    part.unlink(missing_ok=True)
                    raise DriverError(f"image {image_id} refers to a backing file; refused", permanent=True)
                if disk_format in _CONVERT:
                    await host.run(["qemu-img", "convert", "-f", disk_format, "-O", "qcow2", str(part), str(part) + ".qcow2"],
                                   timeout=3600)
                    os.replace(str(part) + ".qcow2", part)
                fmt, vsize = "qcow2", int((await _info(part, "qcow2"))["virtual-size"])
            elif disk_format in _RAW:
                fmt, vsize = "raw", part.stat().st_size
            else:
                part.unlink(missing_ok=True)
                raise DriverError(f"image {image_id}: disk_format {disk_format!r} is not supported", permanent=True)
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)  # a failed download's own file
            raise
        meta = part.with_suffix(".json-part")
        meta.write_text(json.dumps({"format": fmt, "virtual_size": vsize, "disk_format": disk_format,
                                    "checksum": image.get("checksum")}))
        os.replace(meta, self._meta_path(image_id))
        log.info("image %s cached (%s, %d bytes) in %.2fs", image_id, fmt, path.stat().st_size,
                 time.monotonic() - started)
        return Base(path, fmt, vsize)

    def cleanup(self, in_use: Iterable[str]) -> list[str]:
        """Remove bases that no instance uses and nobody used for ``max_age``; returns the removed ids."""
        keep = set(in_use)
        removed: list[str] = []
        if not self.root.is_dir():
            return removed
        now = time.time()
        for meta in self.root.glob("*.json"):
            image_id = meta.stem
            if image_id in keep or (image_id in self._locks and self._locks[image_id].locked()):
                continue
            if now - meta.stat().st_mtime < self.max_age:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.root / image_id).unlink()
            meta.unlink(missing_ok=True)
            removed.append(image_id)
        return removed


async def _info(path: Path, fmt: str) -> dict[str, Any]:
    res = await host.run(["qemu-img", "info", "--output", "json", "-f", fmt, str(path)], timeout=60)
    data: dict[str, Any] = json.loads(res.stdout)
    return data
