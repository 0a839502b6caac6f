"""The object expirer: finds the objects on this node's devices whose ``X-Delete-At`` has passed and deletes
them on every primary with ``X-If-Delete-At`` (so a newer PUT or POST survives), each primary updating the
container listing as for a client's DELETE. Scanning local files needs no queue to keep consistent; every
primary finds the object, and the deletes after the first answer 409 or 404.

A partition's objects with an ``X-Delete-At`` are kept in memory per suffix, with the partition's digest and each
suffix's hash (hashes.py, the replicator's, which change with every file name and so with every write, POST and
delete): a pass reads the metadata of the suffixes that changed since the last one only, not of every object every
minute, nor of every object of a partition that one write touched."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tinystack.object.common import normalize_timestamp, quote_path
from tinystack.object.policies import INDEX_HEADER, Policy
from tinystack.object.servers import diskfile, hashes
from tinystack.object.servers.base import NodeContext
from tinystack.object.servers.replicator import local_devices

log = logging.getLogger(__name__)


@dataclass
class ExpirerStats:
    expired: int = 0
    failures: int = 0


Expiring = tuple[str, str, str]  # an object's name, its x-delete-at and the timestamp of its newest file


def _expiring(directories: list[Path]) -> list[Expiring]:
    """Blocking. The objects of ``directories`` that have an ``X-Delete-At``, due or not."""
    out = []
    for directory in directories:
        state = diskfile.scan(directory)
        if state.data is None:
            continue
        try:
            meta = diskfile.read_meta(state.data)
            if state.meta is not None:
                meta.update(diskfile.read_meta(state.meta))
        except (OSError, ValueError):
            continue
        delete_at = meta.get("x-delete-at")
        if delete_at:
            last = state.meta.name.rpartition(".")[0] if state.meta is not None else state.timestamp
            out.append((str(meta["name"]), str(delete_at), last))
    return out


# Partition dir -> (its digest when read, {suffix: (its hash when read, its objects with an X-Delete-At)}); the hash
# strings are the replicator's own (hashes.py), and a suffix without such objects shares the empty tuple.
_known: dict[str, tuple[str, dict[str, tuple[str, tuple[Expiring, ...]]]]] = {}
_known_lock = threading.Lock()


def _suffix_dirs(suffix_dir: Path) -> list[Path]:
    try:
        return [Path(h.path) for h in os.scandir(suffix_dir) if h.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _reread(base: Path, partition: int, root: Path, datadir: str, reclaim_age: float | None,
            before: dict[str, tuple[str, tuple[Expiring, ...]]]) -> dict[str, tuple[str, tuple[Expiring, ...]]]:
    """Blocking. A changed partition's suffixes: those whose hash is what it was are kept, the others read."""
    out: dict[str, tuple[str, tuple[Expiring, ...]]] = {}
    for suffix, value in hashes.suffix_hashes(root, partition, datadir, reclaim_age).items():
        kept = before.get(suffix)
        out[suffix] = kept if kept is not None and kept[0] == value else (
            value, tuple(_expiring(_suffix_dirs(base / suffix))))
    return out


def due_objects(root: Path, now: float, datadir: str = "objects",
                reclaim_age: float | None = None) -> list[Expiring]:
    """Blocking. ``(name, x-delete-at, timestamp)`` of each object of the policy's ``datadir`` that is due."""
    out: list[Expiring] = []
    prefix = str(root / datadir) + os.sep
    with _known_lock:
        seen = set()
        for partition, digest in hashes.device_digests(root, datadir, reclaim_age).items():
            base = hashes.partition_dir(root, partition, datadir)
            key = str(base)
            seen.add(key)
            kept = _known.get(key)
            if kept is None or kept[0] != digest:
                kept = (digest, _reread(base, partition, root, datadir, reclaim_age, kept[1] if kept else {}))
                _known[key] = kept
            out.extend(e for _, found in kept[1].values() for e in found if _due(e[1], now))
        for key in [k for k in _known if k.startswith(prefix) and k not in seen]:
            del _known[key]  # a partition gone (moved home, wiped)
    return out


def _due(delete_at: str, now: float) -> bool:
    try:
        return int(delete_at) <= now
    except ValueError:
        return False


async def _delete(node: NodeContext, name: str, delete_at: str, last: str, policy: Policy) -> bool:
    account, container, obj = name[1:].split("/", 2)
    ring, cring = node.rings[policy.ring], node.rings["container"]
    part, nodes = ring.get_nodes(account, container, obj)
    cpart, cnodes = cring.get_nodes(account, container)
    # The delete-at time as the tombstone's timestamp, so every primary's expirer writes the same one.
    ts = max(normalize_timestamp(delete_at), normalize_timestamp(float(last) + 0.00001))
    ok = True
    for i, dev in enumerate(nodes):
        c = cnodes[i % len(cnodes)]
        headers = {"X-Timestamp": ts, "X-If-Delete-At": delete_at, INDEX_HEADER: str(policy.index),
                   "X-Container-Host": f"{c.ip}:{c.port}",
                   "X-Container-Device": c.device, "X-Container-Partition": str(cpart)}
        url = f"http://{dev.ip}:{dev.port}{quote_path(dev.device, str(part), account, container, obj)}"
        try:
            async with node.http().delete(url, headers=headers) as resp:
                await resp.read()
                ok = ok and resp.status in (204, 404, 409, 412)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.info("expirer DELETE %s failed: %s", url, exc)
            ok = False
    return ok


async def expire_once(node: NodeContext, port: int, now: float | None = None) -> ExpirerStats:
    stats = ExpirerStats()
    if "container" not in node.rings:
        return stats
    when = time.time() if now is None else now
    for policy in node.settings.policies:
        if policy.ring not in node.rings:
            continue
        devices: list[Any] = local_devices(node, port, policy.ring)
        for dev in devices:
            root = node.settings.devices / dev.device
            due = await asyncio.to_thread(due_objects, root, when, policy.datadir, node.settings.reclaim_age)
            for name, delete_at, last in due:
                if await _delete(node, name, delete_at, last, policy):
                    stats.expired += 1
                else:
                    stats.failures += 1
    return stats
