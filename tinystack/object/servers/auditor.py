"""The object auditor: reads every object file (of every storage policy) on this node's devices, at most
``auditor_files_per_second`` files and ``auditor_bytes_per_second`` bytes a second, and checks its MD5 and size
against the metadata stored with it; a corrupt object's dir moves to ``<device>/quarantined/objects/<hash>``,
which changes its suffix hash, so the replicator restores a good copy from another primary."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinystack.object.policies import index_of_datadir
from tinystack.object.servers import diskfile
from tinystack.object.servers.base import NodeContext
from tinystack.object.servers.replicator import object_devices

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


@dataclass
class AuditStats:
    checked: int = 0
    quarantined: int = 0
    bytes: int = 0


def datadirs(root: Path) -> list[str]:
    """The storage policies' object directories on a device (``objects``, ``objects-1``, ...)."""
    try:
        return sorted(n for n in os.listdir(root) if index_of_datadir(n) is not None)
    except FileNotFoundError:
        return []


def object_dirs(root: Path, datadir: str | None = None) -> list[Path]:
    """Every ``<datadir>/<partition>/<suffix>/<hash>`` dir of a device (every policy's without ``datadir``)."""
    if datadir is None:
        return [d for name in datadirs(root) for d in object_dirs(root, name)]
    out: list[Path] = []
    base = root / datadir
    if not base.is_dir():
        return out
    for part in os.scandir(base):
        if part.is_dir():
            out.extend(object_dirs_of(Path(part.path)))
    return out


def object_dirs_of(partition_dir: Path) -> list[Path]:
    """Every ``<suffix>/<hash>`` dir of one partition dir."""
    out: list[Path] = []
    try:
        suffixes = list(os.scandir(partition_dir))
    except FileNotFoundError:
        return out
    for suffix in suffixes:
        if suffix.is_dir():
            try:
                out.extend(Path(h.path) for h in os.scandir(suffix.path) if h.is_dir())
            except FileNotFoundError:
                continue  # emptied and removed meanwhile
    return out


class Stopped(Exception):
    """The pass was called off (the node stops) while a file was being read."""


class ByteRate:
    """Keeps reads at most ``rate`` bytes a second (0: no limit), sleeping in the reading thread after a chunk
    (Swift's auditor ``bytes_per_second``): a large object is read over many seconds instead of taking a core
    and the disk in one burst. At most a second's worth of unused allowance carries over, so a long run of small
    files does not bank a burst for the next large one."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.stop = threading.Event()
        self._until = time.monotonic()

    def took(self, size: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self._until = max(self._until, now - 1.0) + size / self.rate
        if self._until > now and self.stop.wait(self._until - now):
            raise Stopped


def _valid(data: Path, took: Callable[[int], None] = lambda _size: None) -> tuple[bool, int]:
    try:
        meta = diskfile.read_meta(data)
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        with open(data, "rb") as f:
            while chunk := f.read(CHUNK):
                md5.update(chunk)
                size += len(chunk)
                took(len(chunk))
    except (OSError, ValueError):
        return False, 0
    return md5.hexdigest() == meta.get("etag") and size == int(meta.get("content-length", -1)), size


def quarantine(root: Path, directory: Path) -> Path:
    # <root>/<datadir>/<partition>/<suffix>/<hash>: quarantined under the policy's own directory name.
    target = root / "quarantined" / directory.parent.parent.parent.name / directory.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{directory.name}-{time.time_ns()}")
    os.replace(directory, target)
    diskfile.note_change(directory)
    return target


def audit_dirs(root: Path, directories: list[Path], stats: AuditStats, pace: ByteRate | None = None) -> None:
    """Blocking."""
    for directory in directories:
        state = diskfile.scan(directory)
        if state.data is None:
            continue
        ok, size = _valid(state.data) if pace is None else _valid(state.data, pace.took)
        stats.checked += 1
        stats.bytes += size
        if not ok:
            where = quarantine(root, directory)
            stats.quarantined += 1
            log.warning("auditor quarantined %s to %s", directory, where)


def audit_device(root: Path, stats: AuditStats, pace: ByteRate | None = None) -> None:
    """Blocking: every object of the device at once."""
    audit_dirs(root, object_dirs(root), stats, pace)


async def audit_once(node: NodeContext, port: int) -> AuditStats:
    """One pass over every object of this node, at most ``[object] auditor_files_per_second`` of them and
    ``auditor_bytes_per_second`` bytes a second (0: no limit), as Swift's auditor: an idle node's pass is spread
    out instead of reading every file at once, and a large object does not take a core from the requests."""
    stats = AuditStats()
    rate = node.settings.auditor_files_per_second
    pace = ByteRate(node.settings.auditor_bytes_per_second)
    try:
        for dev in object_devices(node, port):
            root = node.settings.devices / dev.device
            if rate <= 0:
                await asyncio.to_thread(audit_device, root, stats, pace)
                continue
            directories = await asyncio.to_thread(object_dirs, root)
            step = max(1, int(rate))
            for start in range(0, len(directories), step):
                began = time.monotonic()
                await asyncio.to_thread(audit_dirs, root, directories[start:start + step], stats, pace)
                if start + step < len(directories):
                    await asyncio.sleep(max(0.0, step / rate - (time.monotonic() - began)))
    finally:
        pace.stop.set()  # a cancelled pass: its thread stops at its next pause instead of reading on
    record = {**stats.__dict__, "finished": time.time()}
    await asyncio.to_thread((node.settings.devices / "auditor.json").write_text, json.dumps(record))
    return stats
