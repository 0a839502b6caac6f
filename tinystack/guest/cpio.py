"""A reproducible initramfs: a newc cpio archive written in sorted order with fixed owners and times, gzipped
without a timestamp, so the same tree gives the same bytes."""

from __future__ import annotations

import gzip
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Node:
    """A device node the archive carries without the builder having to create one (no root needed)."""

    path: str
    mode: int  # including S_IFCHR / S_IFBLK
    major: int
    minor: int


def _header(ino: int, mode: int, nlink: int, mtime: int, size: int, rmajor: int, rminor: int, name: bytes) -> bytes:
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, rmajor, rminor, len(name) + 1, 0)
    return b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"


def _pad(buf: io.BytesIO) -> None:
    buf.write(b"\0" * (-buf.tell() % 4))


def archive(root: Path, mtime: int, nodes: tuple[Node, ...] = ()) -> bytes:
    """The tree under ``root`` (and ``nodes``) as newc cpio bytes; owner root, times ``mtime``."""
    entries: list[tuple[str, Path | Node]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            entries.append((full.relative_to(root).as_posix(), full))
    entries += [(n.path, n) for n in nodes]
    entries.sort(key=lambda e: e[0])
    buf = io.BytesIO()
    for ino, (rel, item) in enumerate(entries, start=1):
        encoded = rel.encode()
        if isinstance(item, Node):
            buf.write(_header(ino, item.mode, 1, mtime, 0, item.major, item.minor, encoded))
            _pad(buf)
            continue
        st = item.lstat()
        perm = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            data = os.readlink(item).encode()
            mode = stat.S_IFLNK | 0o777
        elif stat.S_ISDIR(st.st_mode):
            data, mode = b"", stat.S_IFDIR | perm
        elif stat.S_ISREG(st.st_mode):
            data, mode = item.read_bytes(), stat.S_IFREG | perm
        else:
            raise ValueError(f"{item}: unsupported file type in the initramfs tree")
        buf.write(_header(ino, mode, 2 if stat.S_ISDIR(mode) else 1, mtime, len(data), 0, 0, encoded))
        _pad(buf)
        buf.write(data)
        _pad(buf)
    buf.write(_header(0, 0, 1, 0, 0, 0, 0, b"TRAILER!!!"))
    _pad(buf)
    return buf.getvalue()


def gzipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(data)
    return out.getvalue()
