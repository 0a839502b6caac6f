"""What qemu-img tells us about uploaded data: virtual size, and images that must be refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from tinystack.image import formats

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")


def test_unsafe_reason() -> None:
    assert formats.unsafe_reason({"format": "qcow2", "virtual-size": 1}) is None
    assert "backing" in (formats.unsafe_reason({"backing-filename": "/etc/passwd"}) or "")
    assert "data file" in (formats.unsafe_reason({"format-specific": {"type": "qcow2",
                                                                      "data": {"data-file": "/dev/sda"}}}) or "")
    vmdk = {"format-specific": {"type": "vmdk", "data": {"create-type": "monolithicFlat", "extents": [{}]}}}
    assert "VMDK" in (formats.unsafe_reason(vmdk) or "")
    vmdk["format-specific"]["data"]["create-type"] = "streamOptimized"  # type: ignore[index]
    assert formats.unsafe_reason(vmdk) is None


def test_raw_is_its_size(tmp_path: Path) -> None:
    assert asyncio.run(formats.inspect(tmp_path / "x", "raw", 1234, True)).virtual_size == 1234
    assert asyncio.run(formats.inspect(tmp_path / "x", "aki", 1234, True)).virtual_size is None


@needs_qemu_img
def test_qcow2_virtual_size_and_mismatch(tmp_path: Path) -> None:
    disk = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "32M"], check=True, capture_output=True)
    assert asyncio.run(formats.inspect(disk, "qcow2", disk.stat().st_size, True)).virtual_size == 32 << 20
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 4096)
    assert asyncio.run(formats.inspect(junk, "qcow2", 4096, False)).virtual_size is None
    with pytest.raises(formats.UnsafeImage):
        asyncio.run(formats.inspect(junk, "qcow2", 4096, True))


@needs_qemu_img
def test_backing_file_is_refused(tmp_path: Path) -> None:
    disk = tmp_path / "b.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", "-u", str(disk), "1G"],
                   check=True, capture_output=True)
    with pytest.raises(formats.UnsafeImage, match="backing file"):
        asyncio.run(formats.inspect(disk, "qcow2", disk.stat().st_size, False))
