"""The object replicator: for each storage policy, for each partition on each of this node's devices, compare it
with the partition's other primaries and push every file they lack or hold older (replication.py's verbs); a
tombstone wins by its timestamp like any file. A pass asks each peer device once for the digests of all its
partitions and compares suffix hashes only where a partition's digests differ. A partition on a device that is
not one of its primaries (a handoff) is pushed to all primaries and removed once every one of them has it.
Tombstones older than ``[object] reclaim_age`` are removed while suffixes are hashed (hashes.py)."""

from __future__ import annotations

import asyncio
import json
import logging
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
    compared: int = 0  # partitions whose digests differed from a peer's, compared suffix by suffix
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


async def _get(node: NodeContext, url: str, policy: int = 0) -> tuple[int, Any]:
    """The status and JSON body of a replication GET (status 0: the peer did not answer)."""
    try:
        async with node.http().get(url, headers={MARK: "true", INDEX_HEADER: str(policy)}) as resp:
            if resp.status != 200:
                await resp.read()
                return resp.status, None
            return 200, await resp.json()
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        log.info("replicator GET %s failed: %s", url, exc)
        return 0, None


async def _json(node: NodeContext, url: str, policy: int = 0) -> Any:
    return (await _get(node, url, policy))[1]


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


# What a peer device's digests are when it could not say: ``None`` (down, or an older node without the verb).
Digests = dict[str, str] | None


async def peer_digests(node: NodeContext, target: Any, policy: int) -> tuple[bool, Digests]:
    """``(reachable, {partition: digest})`` of a peer device, in one request. A peer that answers but does not
    know the verb (an older release: 400) is reachable with no digests, and is then compared partition by
    partition as before."""
    status, body = await _get(node, f"http://{target.ip}:{target.port}{quote_path(target.device)}", policy)
    if status == 200 and isinstance(body, dict):
        return True, {str(k): str(v) for k, v in body.items()}
    return status not in (0, 507), None


async def sync_partition(node: NodeContext, root: Path, partition: int, target: Any, stats: PassStats,
                         policy: Policy | None = None) -> bool:
    """Makes ``target`` hold everything this device holds newer in ``partition`` (of ``policy``, default 0);
    True once it does."""
    index, datadir = (policy.index, policy.datadir) if policy is not None else (0, "objects")
    age = node.settings.reclaim_age
    host = f"{target.ip}:{target.port}"
    base = f"http://{host}{quote_path(target.device, str(partition))}"
    remote = await _json(node, base, index)
    if remote is None:
        return False
    local = await asyncio.to_thread(hashes.suffix_hashes, root, partition, datadir, age)
    differ = [s for s, h in local.items() if remote.get(s) != h]
    if not differ:
        return True
    theirs = await _json(node, f"{base}?suffixes={','.join(differ)}", index)
    if theirs is None:
        return False
    mine = await asyncio.to_thread(hashes.suffix_listing, root, partition, differ, datadir, age)
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


def _target_key(dev: Any) -> tuple[str, int, str]:
    return dev.ip, int(dev.port), dev.device


Peers = dict[tuple[str, int, str], tuple[bool, Digests]]


async def ask_peers(node: NodeContext, targets: list[Any], policy: int) -> Peers:
    """Each peer device's digests, asked at once (one request each)."""
    wanted = {_target_key(t): t for t in targets}
    answers = await asyncio.gather(*(peer_digests(node, t, policy) for t in wanted.values()))
    return dict(zip(wanted, answers, strict=True))


async def replicate_partitions(node: NodeContext, dev: Any, local: dict[int, str], peers: Peers, stats: PassStats,
                               policy: Policy) -> None:
    """Syncs each of the device's partitions (``local``: their digests) with its other primaries: a partition
    whose digest a peer shares costs nothing more; the others are compared suffix by suffix. A handoff partition
    is removed once every primary has it."""
    ring = node.rings[policy.ring]
    root = node.settings.devices / dev.device
    for partition, mine in local.items():
        stats.partitions += 1
        primaries = ring.get_part_nodes(partition)
        results = []
        for target in (p for p in primaries if p.id != dev.id):
            reachable, digests = peers.get(_target_key(target), (True, None))
            if not reachable:
                results.append(False)
            elif digests is not None and digests.get(str(partition)) == mine:
                results.append(True)
            else:
                stats.compared += 1
                results.append(await sync_partition(node, root, partition, target, stats, policy))
        stats.failures += results.count(False)
        if not any(p.id == dev.id for p in primaries) and all(results):
            await asyncio.to_thread(shutil.rmtree, root / policy.datadir / str(partition), True)
            stats.removed_handoffs += 1


async def replicate_once(node: NodeContext, port: int) -> PassStats:
    """One pass over every local device; the stats are also written to ``<devices>/replication.json`` (recon).
    Per policy, the devices' partitions are hashed first; every device that is another primary of one of them is
    asked for its digests once, and only the partitions whose digests differ are compared suffix by suffix (two
    requests per device and peer device and pass when nothing changed, where asking per partition cost two per
    partition)."""
    stats = PassStats()
    started = time.monotonic()
    age = node.settings.reclaim_age
    for policy in node.settings.policies:
        ring = node.rings.get(policy.ring)
        if ring is None:
            continue
        devices = local_devices(node, port, policy.ring)
        local = {d.device: await asyncio.to_thread(hashes.device_digests, node.settings.devices / d.device,
                                                   policy.datadir, age) for d in devices}
        targets = [t for d in devices for p in local[d.device] for t in ring.get_part_nodes(p) if t.id != d.id]
        peers = await ask_peers(node, targets, policy.index)
        for dev in devices:
            await replicate_partitions(node, dev, local[dev.device], peers, stats, policy)
    stats.seconds = time.monotonic() - started
    record = {**stats.__dict__, "finished": time.time()}
    path = node.settings.devices / "replication.json"
    await asyncio.to_thread(path.write_text, json.dumps(record))
    return stats
