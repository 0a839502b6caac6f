"""The QEMU process: its command line, a detached start inside the node namespace, and finding it again.

QEMU daemonizes itself (own session, pidfile), so it outlives the agent; the agent finds it again by the
pidfile and checks ``/proc/<pid>/cmdline`` names the instance, so a recycled pid is never mistaken for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from typing import Any

from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.qemu.layout import InstanceDir
from tinystack.compute.drivers.qemu.volumes import argv as volume_args
from tinystack.compute.drivers.qemu.volumes import root_argv
from tinystack.core import host

log = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
async def version(qemu: str = QEMU) -> int:
    """QEMU's version as Nova encodes it: major * 1000000 + minor * 1000 + micro."""
    res = await host.run([qemu, "--version"], timeout=15)
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", res.stdout)
    if not match:
        return 0
    major, minor, micro = (int(g) for g in match.groups())
    return major * 1_000_000 + minor * 1000 + micro


def pid_of(idir: InstanceDir, netns: str | None = None) -> int | None:
    """The pid of this instance's QEMU in ``idir``'s slot if it runs (in namespace ``netns``, when given)."""
    try:
        pid = int(idir.pidfile.read_text().strip())
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()  # noqa: SIM115 - tiny read
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    # A zombie has an empty cmdline; a recycled pid names something else.
    if f"guest=instance-{idir.uuid}".encode() not in cmdline:
        return None
    return pid if netns is None or in_netns(pid, netns) else None


def in_netns(pid: int, netns: str) -> bool:
    """Whether process ``pid`` runs in network namespace ``netns``: two nodes' QEMUs of one guest (a live
    migration) share the instance directory, and each agent must touch only its own."""
    try:
        mine = os.stat(f"/run/netns/{netns}")
        theirs = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


async def wait_gone(idir: InstanceDir, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_of(idir) is not None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def kill(idir: InstanceDir) -> None:
    """SIGKILL (the last resort after QMP ``quit``), then wait for the process to disappear."""
    pid = pid_of(idir)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not await wait_gone(idir, 10):
            raise DriverError(f"QEMU pid {pid} does not die")


def argv(idir: InstanceDir, spec: dict[str, Any], *, kvm: bool, disks: list[tuple[str, str, bool]],
         kernel: str | None, initrd: str | None, incoming: str | None = None,
         volumes: list[dict[str, Any]] | None = None, root_volume: dict[str, Any] | None = None,
         qemu: str = QEMU) -> list[str]:
    """The command line. ``root_volume``: the volume a volume-backed guest boots from, its first disk (vda);
    ``disks``: (path, format, read_only) in guest order (vda or after the root volume, ...), then ``volumes``
    (the instance document's others, with their PCI slots: see volumes.py). ``incoming``:
    ``"defer"`` waits for a live migration (``migrate-incoming``) and runs the guest as soon as it has arrived;
    a path resumes from a saved memory file."""
    flavor = spec.get("flavor") or {}
    args = [
        qemu, "-name", f"guest=instance-{idir.uuid},debug-threads=on", "-uuid", idir.uuid,
        "-machine", "pc", "-accel", "kvm" if kvm else "tcg", "-cpu", "host" if kvm else "max",
        "-m", str(int(flavor.get("memory_mb") or 128)), "-smp", str(int(flavor.get("vcpus") or 1)),
        "-nodefaults", "-no-user-config", "-display", "none", "-vga", "std", "-rtc", "base=utc",
        "-daemonize", "-pidfile", str(idir.pidfile),
        "-qmp", f"unix:{idir.qmp},server=on,wait=off",
        "-chardev", f"socket,id=serial0,path={idir.serial},server=on,wait=off", "-serial", "chardev:serial0",
        "-vnc", f"unix:{idir.vnc}",
    ]
    if root_volume is not None:
        args += root_argv(root_volume)
    for i, (path, fmt, read_only) in enumerate(disks):
        opts = f"file={path},if=none,id=drive{i},format={fmt},cache=writeback,discard=unmap"
        if read_only:
            opts += ",readonly=on"
        boot = ",bootindex=1" if i == 0 and root_volume is None else ""
        args += ["-drive", opts, "-device", f"virtio-blk-pci,drive=drive{i},id=disk{i}{boot}"]
    args += volume_args(volumes or [])
    if kernel:
        args += ["-kernel", kernel, "-append", "console=ttyS0 root=/dev/vda"]
        if initrd:
            args += ["-initrd", initrd]
    for i, nic in enumerate(spec.get("nics") or []):
        args += ["-netdev", f"tap,id=net{i},ifname={nic['tap']},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev=net{i},mac={nic['mac_address']},id=nic{i}"]
    if incoming == "defer":
        # No -S: QEMU runs the guest the moment its state has arrived (and keeps it paused if it was paused),
        # so the guest is stopped only for the migration's own downtime.
        args += ["-incoming", "defer"]
    else:
        # -S: start with vCPUs stopped, so the agent drains the console from the very first byte.
        args.insert(args.index("-daemonize"), "-S")
    if incoming and incoming != "defer":
        # QEMU 7.2 has no file: migration URI; the path is ours (no shell metacharacters in a uuid dir).
        args += ["-incoming", f"exec:cat {incoming}"]
    return args


async def start(idir: InstanceDir, args: list[str], netns: str | None) -> None:
    """Start QEMU detached; returns when it has daemonized (its sockets listen, vCPUs stopped)."""
    idir.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sock in (idir.qmp, idir.serial, idir.vnc):
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
    try:
        await host.run(args, netns=netns, timeout=60)
    except host.CommandFailed as exc:
        raise DriverError(f"QEMU failed to start: {exc.stderr.strip() or exc}") from exc


async def wait_tap(netns: str, tap: str, timeout: float) -> None:
    """The network agent plugs the tap; wait (bounded) for it to exist in the node namespace."""
    deadline = time.monotonic() + timeout
    while True:
        res = await host.run(["ip", "link", "show", "dev", tap], netns=netns, check=False, timeout=10)
        if res.returncode == 0:
            return
        if time.monotonic() > deadline:
            why = res.stderr.strip()
            raise DriverError(f"tap {tap} did not appear in namespace {netns} within {timeout:.0f}s ({why})")
        await asyncio.sleep(0.25)
