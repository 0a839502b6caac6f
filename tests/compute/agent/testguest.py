"""A tiny test guest: Debian's cloud kernel and a busybox initramfs that prints markers on the serial
console (boot, its NICs' MACs) and powers off when the ACPI power button is pressed.

Used until the guest image exists, and by benchmarks/compute_boot.py. Built once into a cache directory.
"""

from __future__ import annotations

import fcntl
import glob
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("TINYSTACK_TESTGUEST_CACHE", "/var/tmp/tinystack-testguest"))
BOOT_MARK = "TSGUEST-BOOT"
READY_MARK = "TSGUEST-READY"
OFF_MARK = "TSGUEST-POWEROFF"

# Load order matters: each module's dependencies come first.
MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "failover",
           "net_failover", "virtio_net", "virtio_blk", "button", "evdev"]

INIT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "{BOOT_MARK} uptime=$(cut -d' ' -f1 /proc/uptime)"
for m in {" ".join(MODULES)}; do insmod /lib/modules/$m.ko || echo "TSGUEST-INSMOD-FAILED $m"; done
echo "TSGUEST-NETDEVS $(ls /sys/class/net)"
sleep 1
for n in /sys/class/net/eth*; do [ -e "$n" ] && echo "TSGUEST-NIC ${{n##*/}} $(cat $n/address)"; done
dev=
for e in /sys/class/input/event*; do
  grep -q "Power Button" $e/device/name 2>/dev/null && dev=/dev/input/${{e##*/}}
done
echo "{READY_MARK} button=$dev"
if [ -n "$dev" ]; then
  head -c 1 "$dev" >/dev/null
  echo "{OFF_MARK}"
  poweroff -f
fi
while true; do sleep 3600; done
"""


def _kernel_tree() -> Path:
    """A directory with boot/vmlinuz-* and lib/modules/* (the host's /boot, else Debian's cloud kernel)."""
    tree = CACHE / "kernel"
    if list(tree.glob("boot/vmlinuz-*")):
        return tree
    if glob.glob("/boot/vmlinuz-*") and glob.glob("/lib/modules/*/kernel/drivers/virtio/virtio_pci.ko"):
        return Path("/")
    work = Path(tempfile.mkdtemp(prefix="tsguest-", dir=CACHE))
    try:
        subprocess.run(["apt-get", "download", "linux-image-cloud-amd64"], cwd=work, check=True, capture_output=True)
        meta = next(work.glob("linux-image-cloud-amd64_*.deb"))
        deps = subprocess.run(["dpkg-deb", "-f", str(meta), "Depends"], check=True, capture_output=True, text=True)
        real = deps.stdout.split(",")[0].split()[0].strip()
        subprocess.run(["apt-get", "download", real], cwd=work, check=True, capture_output=True)
        deb = next(work.glob(f"{real}_*.deb"))
        staging = work / "x"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        staging.rename(tree)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tree


def _static_busybox() -> Path:
    """Debian's busybox-static binary, unpacked into the cache (installing it would replace ``busybox``)."""
    target = CACHE / "busybox"
    if target.exists():
        return target
    work = Path(tempfile.mkdtemp(prefix="tsbusybox-", dir=CACHE))
    try:
        subprocess.run(["apt-get", "download", "busybox-static"], cwd=work, check=True, capture_output=True)
        deb = next(work.glob("busybox-static_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
        found = work / "x" / "bin" / "busybox"
        shutil.copyfile(found, target.with_suffix(".tmp"))
        target.with_suffix(".tmp").rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive in the kernel's ``newc`` format: (name, mode, data); symlinks carry their target."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.write(b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
    return out.getvalue()


def build() -> tuple[Path, Path]:
    """(kernel, initramfs) paths, building them on first use; one builder at a time (parallel test workers
    share the cache)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build()


def _build() -> tuple[Path, Path]:
    kernel_out, initrd_out = CACHE / "vmlinuz", CACHE / "initrd.img"
    if kernel_out.exists() and initrd_out.exists():
        return kernel_out, initrd_out
    tree = _kernel_tree()
    vmlinuz = sorted(tree.glob("boot/vmlinuz-*"))[-1]
    version = vmlinuz.name.removeprefix("vmlinuz-")
    moddir = tree / "lib" / "modules" / version / "kernel"
    busybox = _static_busybox()
    entries: list[tuple[str, int, bytes]] = [
        ("bin", 0o040755, b""), ("lib", 0o040755, b""), ("lib/modules", 0o040755, b""),
        ("bin/busybox", 0o100755, Path(busybox).read_bytes()), ("bin/sh", 0o120777, b"busybox"),
        ("init", 0o100755, INIT.encode()),
    ]
    for name in MODULES:
        found = list(moddir.rglob(f"{name}.ko"))
        if found:
            entries.append((f"lib/modules/{name}.ko", 0o100644, found[0].read_bytes()))
    tmp = initrd_out.with_suffix(".tmp")
    tmp.write_bytes(_newc(entries))
    shutil.copyfile(vmlinuz, kernel_out.with_suffix(".tmp"))
    kernel_out.with_suffix(".tmp").rename(kernel_out)
    tmp.rename(initrd_out)
    return kernel_out, initrd_out
