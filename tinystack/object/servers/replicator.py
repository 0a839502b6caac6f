"""The object replicator: for each storage policy, for each partition on each of this node's devices, compare
suffix hashes with the partition's other primaries and push every file they lack or hold older (replication.py's
verbs); a tombstone wins by its timestamp like any file. A partition on a device that is not one of its
primaries (a handoff) is pushed to all primaries and removed once every one of them has it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tinystack.object.common import quote_path
from tinystack.object.policies import INDEX_HEADER, Policy
from tinystack.object.servers import hashes
from tinystack.object.servers.base import NodeContext
from tinystack.object.servers.replication import MARK, read_file

log = logging.getLogger(__name__)


@dataclass
class PassStats:
    partitions: int = 0
    pushed: int = 0
    removed_handoffs: int = 0
    failures: int = 0
    seconds: float = 0.0


def local_devices(node: NodeContext, port: int, kind: str = "object") -> list[Any]:
    """This node's devices (its address and ``port``) in the ``kind`` ring whose directories exist."""
    s = node.settings
    ring = node.rings.get(kind)
    if ring is None:
        return []
    return [d for d in ring.devs if d is not None and d.ip == s.storage_ip and int(d.port) == port
            and (s.devices / d.device).is_dir()]


def object_devices(node: NodeContext, port: int) -> list[Any]:
    """This node's devices in any storage policy's object ring (each once)."""
    found: dict[str, Any] = {}
    for policy in node.settings.policies:
        for dev in local_devices(node, port, policy.ring):
            found.setdefault(dev.device, dev)
    return list(found.values())


async def _json(node: NodeContext, url: str, policy: int = 0) -> Any:
    try:
        async with node.http().get(url, headers={MARK: "true", INDEX_HEADER: str(policy)}) as resp:
            if resp.status != 200:
                return None
            return await resp.json()
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        log.info("replicator GET %s failed: %s", url, exc)
        return None


async def _push(node: NodeContext, host: str, device: str, partition: int, name_hash: str, path: Path,
                policy: int = 0) -> bool:
    try:
        meta, body = await asyncio.to_thread(read_file, path)
    except OSError:
        return False
    url = f"http://{host}{quote_path(device, str(partition), name_hash, path.name)}"
    headers = {MARK: "true", INDEX_HEADER: str(policy), "X-Object-Metadata": json.dumps(meta, separators=(",", ":")),
               "Content-Length": str(len(body))}
    try:
        async with node.http().put(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status in (201, 409)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.info("replicator push to %s failed: %s", url, exc)
        return False


async def sync_partition(node: NodeContext, root: Path, partition: int, target: Any, stats: PassStats,
                         policy: Policy | None = None) -> bool:
    """Makes ``target`` hold everything this device holds newer in ``partition`` (of ``policy``, default 0);
    True once it does."""
    index, datadir = (policy.index, policy.datadir) if policy is not None else (0, "objects")
    host = f"{target.ip}:{target.port}"
    base = f"http://{host}{quote_path(target.device, str(partition))}"
    remote = await _json(node, base, index)
    if remote is None:
        return False
    local = await asyncio.to_thread(hashes.suffix_hashes, root, partition, datadir)
    differ = [s for s, h in local.items() if remote.get(s) != h]
    if not differ:
        return True
    theirs = await _json(node, f"{base}?suffixes={','.join(differ)}", index)
    if theirs is None:
        return False
    mine = await asyncio.to_thread(hashes.suffix_listing, root, partition, differ, datadir)
    ok = True
    for name_hash, names in mine.items():
        have = set(theirs.get(name_hash, []))
        directory = hashes.partition_dir(root, partition, datadir) / name_hash[-3:] / name_hash
        # The .data/.ts first: a .meta is only taken over the data it updates.
        for name in sorted(names, key=lambda n: n.endswith(".meta")):
            if name not in have:
                if await _push(node, host, target.device, partition, name_hash, directory / name, index):
                    stats.pushed += 1
                else:
                    ok = False
    return ok


async def replicate_device(node: NodeContext, dev: Any, stats: PassStats, policy: Policy | None = None) -> None:
    policy = policy or node.settings.policies[0]
    ring = node.rings[policy.ring]
    root = node.settings.devices / dev.device
    objects = root / policy.datadir
    try:
        partitions = sorted(int(p) for p in os.listdir(objects) if p.isdigit())
    except FileNotFoundError:
        return
    for partition in partitions:
        stats.partitions += 1
        primaries = ring.get_part_nodes(partition)
        is_primary = any(p.id == dev.id for p in primaries)
        others = [p for p in primaries if p.id != dev.id]
        results = [await sync_partition(node, root, partition, t, stats, policy) for t in others]
        stats.failures += results.count(False)
        if not is_primary and all(results):
            await asyncio.to_thread(shutil.rmtree, objects / str(partition), True)
            stats.removed_handoffs += 1


async def replicate_once(node: NodeContext, port: int) -> PassStats:
    """One pass over every local device; the stats are also written to ``<devices>/replication.json`` (recon)."""
    stats = PassStats()
    started = time.monotonic()
    for policy in node.settings.policies:
        if policy.ring in node.rings:
            for dev in local_devices(node, port, policy.ring):
                await replicate_device(node, dev, stats, policy)
    stats.seconds = time.monotonic() - started
    record = {**stats.__dict__, "finished": time.time()}
    path = node.settings.devices / "replication.json"
    await asyncio.to_thread(path.write_text, json.dumps(record))
    return stats
