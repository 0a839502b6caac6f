"""Which accelerator guests run under: KVM only where a real Linux kernel has booted under it to userspace.

``/dev/kvm`` can open, run SeaBIOS and still kill every Linux guest (a paravirtual KVM that stops on an
internal error, or MSRs the host refuses), so the verdict comes from booting the default guest's kernel
with a probe init (``rdinit=/sbin/kvm-probe``, built into the guest image) that prints one line and
powers off. The verdict is kept in a small file keyed by QEMU's version, the host kernel and the probe
kernel, and is withdrawn for good the moment a guest dies of a KVM error (``mark_broken``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from tinystack.core import host

log = logging.getLogger(__name__)

PROBE_INIT = "/sbin/kvm-probe"
PROBE_MARK = "tinystack-kvm-probe: userspace reached"
PROBE_TIMEOUT = 15.0  # a Linux boot to userspace takes 1-3 s under KVM; an internal error hangs until this
# What QEMU prints when KVM fails a guest: kvm-pvm's internal error, an MSR the host refuses, an open failure.
KVM_ERROR_HINTS = ("KVM internal error", "kvm-pvm", "failed to set MSR", "kvm_buf_set_msrs", "Could not access KVM",
                   "failed to initialize kvm", "failed to initialize KVM")

# The kernel and ramdisk of a guest image that carries the probe init, or None while there is none yet.
ProbeImage = Callable[[], tuple[Path, Path] | None]


def kvm_error(text: str) -> bool:
    """Whether QEMU's output names a KVM failure (as opposed to a bad disk, a missing tap ...)."""
    return any(hint.lower() in text.lower() for hint in KVM_ERROR_HINTS)


def uses_kvm(args: list[str]) -> bool:
    return any(a == "-accel" and b == "kvm" for a, b in itertools.pairwise(args))


class Accelerator:
    """The node's verdict on KVM. ``mode``: ``auto`` (probe, fall back to TCG), ``on`` (always KVM, a failure
    is the guest's ERROR), ``off`` (always TCG)."""

    def __init__(self, mode: str, qemu: str, cache_file: Path, probe_image: ProbeImage | None = None,
                 device: str = "/dev/kvm") -> None:
        self.mode = mode
        self.device = device
        self.qemu = qemu
        self.cache_file = cache_file
        self.probe_image = probe_image
        self._usable: bool | None = None if mode == "auto" else mode == "on"
        self._provisional = False  # decided without a Linux kernel: probe again once one is there
        self.reason = ""
        self._key: str | None = None
        self._lock = asyncio.Lock()

    @property
    def known(self) -> bool | None:
        """The verdict so far (None: not probed yet)."""
        return self._usable

    async def use_kvm(self) -> bool:
        if self.mode != "auto":
            return self.mode == "on"
        if self._usable is not None and not self._provisional:
            return self._usable
        async with self._lock:
            if self._usable is None or (self._provisional and self._probe_files() is not None):
                self._usable, self.reason = await self._decide()
                log.info("KVM %s (%s)", "usable" if self._usable else "not usable: guests run under TCG", self.reason)
        return bool(self._usable)

    async def mark_broken(self, reason: str) -> None:
        """A guest died of a KVM error: every later guest on this node runs under TCG, and so does the next start
        with the same QEMU and host kernel, whatever the probe kernel says."""
        if self.mode != "auto":
            return
        if self._usable is not False:
            log.warning("KVM is not usable on this node after all (%s): guests run under TCG from now on", reason)
        self._usable, self._provisional, self.reason = False, False, reason
        data = self._load(await self._host_key())
        data["broken"] = {"reason": reason, "at": int(time.time())}
        self._store(data)

    # -- deciding ------------------------------------------------------------------------------------

    async def _decide(self) -> tuple[bool, str]:
        if not os.path.exists(self.device):
            return False, f"no {self.device}"
        data = self._load(await self._host_key())
        broken = data.get("broken")
        if isinstance(broken, dict):
            return False, f"a guest died of a KVM error before: {broken.get('reason', '')}"
        files = self._probe_files()
        if files is None:
            # No guest kernel to probe with yet (its image is still being built): TCG until there is one. A
            # firmware probe is no evidence: on some hosts SeaBIOS runs under KVM while every Linux kernel hangs
            # at once, silently and in runstate "running", where no run-time watch can tell it from a slow boot.
            self._provisional = True
            return False, "no Linux kernel to probe KVM with yet: TCG until the guest image is built"
        self._provisional = False
        digest = (await asyncio.to_thread(_sha256, files[0]))[:16]
        kernels = data.setdefault("kernels", {})
        assert isinstance(kernels, dict)
        cached = kernels.get(digest)
        if isinstance(cached, dict) and "usable" in cached:
            return bool(cached["usable"]), f"probed before: {cached.get('reason', '')}"
        usable, reason = await self._kernel_probe(*files)
        kernels[digest] = {"usable": usable, "reason": reason, "at": int(time.time())}
        self._store(data)
        return usable, reason

    def _probe_files(self) -> tuple[Path, Path] | None:
        if self.probe_image is None:
            return None
        try:
            return self.probe_image()
        except OSError:
            return None

    async def _kernel_probe(self, kernel: Path, initrd: Path) -> tuple[bool, str]:
        """Boot ``kernel`` under KVM with the probe init; usable only if its line reaches the serial port."""
        argv = [self.qemu, "-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "128", "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
                "-kernel", str(kernel), "-initrd", str(initrd),
                "-append", f"console=ttyS0 rdinit={PROBE_INIT} panic=-1 quiet"]
        started = time.monotonic()
        try:
            res = await host.run(argv, check=False, timeout=PROBE_TIMEOUT)
            out, err, code = res.stdout, res.stderr, res.returncode
        except host.CommandFailed as exc:  # the timeout: a guest stuck (an internal error pauses it)
            out, err, code = "", exc.stderr, exc.returncode
        took = time.monotonic() - started
        if PROBE_MARK in out:
            return True, f"a Linux kernel booted to userspace under KVM in {took:.1f}s"
        detail = (err.strip() or out.strip() or f"exit {code}").splitlines()
        return False, f"a Linux kernel did not boot under KVM ({' / '.join(detail[-3:])[:300]})"

    async def _host_key(self) -> str:
        """What the verdict depends on besides the probe kernel: QEMU's version and the host's kernel."""
        if self._key is None:
            res = await host.run([self.qemu, "--version"], check=False, timeout=15)
            self._key = f"{(res.stdout.splitlines() or [''])[0]}|{os.uname().release}"
        return self._key

    def _load(self, key: str) -> dict[str, object]:
        """The verdicts kept for ``key``; those of another QEMU or host kernel are dropped."""
        try:
            data = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or data.get("host") != key:
            return {"host": key, "kernels": {}}
        return data

    def _store(self, data: dict[str, object]) -> None:
        with contextlib.suppress(OSError):
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.cache_file)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
