"""This machine: free disk under the state directories, and whether guests run under KVM or TCG (the verdict
file the compute driver keeps, tinystack/compute/drivers/qemu/accel.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tinystack.doctor.findings import Finding, error, info, ok, warning

CHECK_DISK = "disk"
CHECK_KVM = "kvm"


def disk(paths: list[Path], min_free_mb: int) -> list[Finding]:
    """Free space of each file system under ``paths`` (one finding per file system, named by its first path)."""
    found: list[Finding] = []
    seen: set[int] = set()
    for path in paths:
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            device = os.stat(probe).st_dev
            usage = shutil.disk_usage(probe)
        except OSError as exc:
            found.append(warning(CHECK_DISK, f"cannot read the free space under {path}: {exc}",
                                 "check that the path exists and this user may read it", str(path)))
            continue
        if device in seen:
            continue
        seen.add(device)
        free_mb = usage.free // (1024 * 1024)
        share = usage.free / usage.total if usage.total else 0.0
        what = f"{free_mb} MiB free ({share:.0%}) under {path}"
        if free_mb < min_free_mb:
            level = error if free_mb < min_free_mb // 4 else warning
            found.append(level(CHECK_DISK, what + f", less than [doctor] min_free_mb = {min_free_mb}",
                               "free space (old images in the image cache, logs under <state dir>/log, deleted "
                               "guests' files) or grow the file system", str(path)))
        else:
            found.append(ok(CHECK_DISK, what, str(path)))
    return found


def kvm(verdict_file: Path, mode: str, driver: str, device: str = "/dev/kvm") -> Finding:
    """KVM or TCG as the compute agent last decided; TCG is a fact to know (guests are slower), not a fault."""
    if driver != "qemu":
        return info(CHECK_KVM, f"compute driver {driver}: no guests run on this host's hypervisor")
    if mode == "off":
        return info(CHECK_KVM, "guests run under TCG: [compute] kvm = off")
    if not os.path.exists(device):
        if mode == "on":
            return error(CHECK_KVM, f"[compute] kvm = on but {device} does not exist: guests fail to start",
                         "enable virtualisation (BIOS, nested virtualisation) and load kvm_intel or kvm_amd, "
                         "or set [compute] kvm = auto")
        return info(CHECK_KVM, f"guests run under TCG: no {device} (slower; enable virtualisation for KVM)")
    try:
        data = json.loads(verdict_file.read_text())
    except (OSError, ValueError):
        return info(CHECK_KVM, f"{device} exists; the compute agent has not decided on KVM yet (no {verdict_file})")
    broken = data.get("broken") if isinstance(data, dict) else None
    if isinstance(broken, dict):
        return info(CHECK_KVM, f"guests run under TCG: a guest died of a KVM error ({broken.get('reason', '')}); "
                    f"remove {verdict_file} to probe again after fixing KVM")
    kernels = data.get("kernels") if isinstance(data, dict) else None
    verdicts = [v for v in (kernels or {}).values() if isinstance(v, dict) and "usable" in v]
    if not verdicts:
        return info(CHECK_KVM, f"{device} exists; the compute agent has not probed KVM yet")
    last = max(verdicts, key=lambda v: v.get("at", 0))
    if last["usable"]:
        return ok(CHECK_KVM, f"guests run under KVM ({last.get('reason', '')})")
    return info(CHECK_KVM, f"guests run under TCG: {device} exists but KVM does not work ({last.get('reason', '')})")
