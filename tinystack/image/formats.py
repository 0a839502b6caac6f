"""Disk and container formats, and what ``qemu-img info`` says about uploaded data (virtual size, safety)."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from tinystack.core import host

log = logging.getLogger(__name__)

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")

# disk_format -> qemu-img's driver name; formats missing here are not disks qemu-img can measure.
_QEMU_DRIVER = {"qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx", "ploop": "parallels"}
# A raw file's virtual size is its size.
_RAW_LIKE = ("raw", "iso")
# Single-file VMDK variants; others name extent files, which could expose host files to whoever boots it.
_VMDK_SAFE = ("monolithicSparse", "streamOptimized")
_LIMITS = ["--as=1073741824", "--cpu=30"]


class UnsafeImage(ValueError):
    """The data is not acceptable for the claimed format: it does not parse, or it refers to other files."""


@dataclass(frozen=True)
class Inspection:
    virtual_size: int | None


def unsafe_reason(info: dict[str, object]) -> str | None:
    """Why ``qemu-img info`` JSON describes an image that must not be served, or None."""
    if info.get("backing-filename") or info.get("full-backing-filename"):
        return "the image has a backing file"
    specific = info.get("format-specific")
    data = specific.get("data") if isinstance(specific, dict) else None
    if not isinstance(specific, dict) or not isinstance(data, dict):
        return None
    if data.get("data-file"):
        return "the image has an external data file"
    if specific.get("type") == "vmdk":
        create_type = data.get("create-type")
        extents = data.get("extents") or []
        if create_type not in _VMDK_SAFE or (isinstance(extents, list) and len(extents) > 1):
            return f"VMDK create-type {create_type!r} is not allowed"
    return None


def needs_qemu_img(disk_format: str | None) -> bool:
    """Whether measuring ``disk_format`` reads the data (a raw image's virtual size is just its size)."""
    return disk_format in _QEMU_DRIVER


async def inspect(path: Path, disk_format: str | None, size: int, require_match: bool) -> Inspection:
    """Measure the image at ``path`` as ``disk_format`` without probing other formats.

    Raises UnsafeImage when the data refers to other files, or (with ``require_match``) does not parse."""
    if disk_format in _RAW_LIKE:
        return Inspection(virtual_size=size)
    driver = _QEMU_DRIVER.get(disk_format or "")
    if driver is None or shutil.which("qemu-img") is None:
        return Inspection(virtual_size=None)
    argv = ["qemu-img", "info", "--output=json", "-f", driver, str(path)]
    # qemu-img parses untrusted data: bound its memory and CPU as Glance does.
    if shutil.which("prlimit"):
        argv = ["prlimit", *_LIMITS, "--", *argv]
    result = await host.run(argv, check=False, timeout=60)
    if result.returncode != 0:
        if require_match:
            raise UnsafeImage(f"Image disk_format {disk_format} does not match the uploaded data")
        log.info("qemu-img cannot read %s as %s; virtual_size stays unknown", path.name, disk_format)
        return Inspection(virtual_size=None)
    try:
        info = json.loads(result.stdout)
    except ValueError:
        return Inspection(virtual_size=None)
    reason = unsafe_reason(info)
    if reason:
        raise UnsafeImage(f"Image failed safety checks: {reason}")
    virtual = info.get("virtual-size")
    return Inspection(virtual_size=int(virtual) if isinstance(virtual, int) else None)
