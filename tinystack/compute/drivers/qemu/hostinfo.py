"""This node's capacity for the ``node`` status document: memory, CPUs and the instances path's disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tinystack.compute.drivers.base import HostInfo
from tinystack.compute.drivers.qemu import process


async def probe(instances_path: Path, qemu: str = process.QEMU) -> HostInfo:
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    st = os.statvfs(instances_path)
    cpu: dict[str, Any] = {"arch": os.uname().machine, "model": "", "vendor": "", "features": [],
                           "topology": {"sockets": 1, "cores": os.cpu_count() or 1, "threads": 1}}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and not cpu["model"]:
                cpu["model"] = value
            elif key == "vendor_id" and not cpu["vendor"]:
                cpu["vendor"] = value
            elif key == "flags" and not cpu["features"]:
                cpu["features"] = sorted(value.split())
    return HostInfo(os.cpu_count() or 1, mem_kb // 1024, st.f_blocks * st.f_frsize // 1024**3, "QEMU",
                    await process.version(qemu), cpu)
