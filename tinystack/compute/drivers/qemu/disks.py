"""The instance's disks: a qcow2 overlay on the cached base, ephemeral and swap from the flavor, and the
config drive (ISO 9660, label ``config-2``). Disks only grow; a smaller flavor never shrinks one."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.qemu.imagecache import Base
from tinystack.core import host

GiB = 1024**3
MiB = 1024**2


async def virtual_size(path: Path, fmt: str = "qcow2") -> int:
    res = await host.run(["qemu-img", "info", "--output", "json", "-U", "-f", fmt, str(path)], timeout=60)
    return int(json.loads(res.stdout)["virtual-size"])


async def create_overlay(path: Path, base: Base, size_gb: int) -> None:
    """A qcow2 overlay on ``base``: the flavor's root size, or the image's own when the flavor says 0."""
    size = size_gb * GiB
    if size and size < base.virtual_size:
        raise DriverError(f"Flavor's disk is too small for requested image: the image needs {base.virtual_size} "
                          f"bytes, the flavor gives {size}", permanent=True)
    tmp = path.with_suffix(".tmp")
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", base.format, "-b", str(base.path), str(tmp)]
    if size:
        argv.append(str(size))
    await host.run(argv, timeout=120)
    tmp.replace(path)


async def grow(path: Path, size_gb: int) -> None:
    """Grow a qcow2 disk to ``size_gb`` (0: leave it); never shrinks."""
    if size_gb and await virtual_size(path) < size_gb * GiB:
        await host.run(["qemu-img", "resize", "-q", "-f", "qcow2", str(path), str(size_gb * GiB)], timeout=120)


async def ensure_ephemeral(path: Path, size_gb: int) -> None:
    """The flavor's ephemeral disk (blank qcow2; the guest formats it). Grows, never shrinks or vanishes
    while the flavor has one."""
    if not size_gb:
        path.unlink(missing_ok=True)
        return
    if path.exists():
        await grow(path, size_gb)
        return
    await host.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(size_gb * GiB)], timeout=120)


async def ensure_swap(path: Path, size_mb: int) -> None:
    """The flavor's swap disk: raw, formatted with mkswap; recreated when the size changes (it holds nothing)."""
    if not size_mb:
        path.unlink(missing_ok=True)
        return
    if path.exists() and path.stat().st_size == size_mb * MiB:
        return
    tmp = path.with_suffix(".tmp")
    await host.run(["qemu-img", "create", "-q", "-f", "raw", str(tmp), str(size_mb * MiB)], timeout=120)
    await host.run(["mkswap", str(tmp)], timeout=60)
    tmp.replace(path)


def _iso_tool() -> str:
    for tool in ("genisoimage", "xorrisofs", "mkisofs"):
        if shutil.which(tool):
            return tool
    raise DriverError("no ISO 9660 builder (genisoimage or xorriso) installed", permanent=True)


async def build_config_drive(path: Path, config_drive: dict[str, Any] | None) -> None:
    """The config drive from the spec's files (path → base64 content); removed when the spec has none."""
    if not config_drive:
        path.unlink(missing_ok=True)
        return
    files = config_drive.get("files") or {}
    with tempfile.TemporaryDirectory(prefix="configdrive-", dir=path.parent) as tree:
        root = Path(tree)
        for name, content in files.items():
            rel = PurePosixPath(str(name).lstrip("/"))
            if ".." in rel.parts or not rel.parts:
                raise DriverError(f"config drive: invalid file path {name!r}", permanent=True)
            target = root.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                target.write_bytes(base64.b64decode(content, validate=True))
            except (ValueError, TypeError) as exc:
                raise DriverError(f"config drive: {name} is not base64", permanent=True) from exc
        tmp = path.with_suffix(".tmp")
        await host.run([_iso_tool(), "-o", str(tmp), "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
                        "-V", "config-2", "-J", "-R", "-quiet", str(root)], timeout=120)
        tmp.replace(path)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
