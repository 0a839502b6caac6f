"""Kernel modules for the initramfs: each module's dependencies read from its ``.modinfo`` ELF section, and
the order to load them in (Debian's kernel package ships no modules.dep: depmod runs at install time)."""

from __future__ import annotations

import struct
from pathlib import Path


def modinfo(ko: bytes) -> dict[str, str]:
    """The ``key=value`` strings of an ELF64 little-endian module's ``.modinfo`` section."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2 or ko[5] != 1:
        raise ValueError("not an ELF64 little-endian kernel module")
    shoff, = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize)
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    for i in range(shnum):
        name_off, offset, size = section(i)
        end = ko.index(b"\0", str_off + name_off)
        if ko[str_off + name_off:end] == b".modinfo":
            out: dict[str, str] = {}
            for item in ko[offset:offset + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    out.setdefault(key, value)
            return out
    return {}


def load_order(wanted: list[str], index: dict[str, Path], builtin: set[str]) -> list[str]:
    """Module names to insmod, dependencies first. ``index``: module name → .ko path; built-ins are skipped."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in order or name in builtin:
            return
        if name in visiting:
            raise ValueError(f"module dependency cycle at {name}")
        if name not in index:
            raise ValueError(f"kernel module {name} not found in the kernel package")
        visiting.add(name)
        deps = modinfo(index[name].read_bytes()).get("depends", "")
        for dep in filter(None, deps.split(",")):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order
