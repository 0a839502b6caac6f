"""The updates one storage server sends another: an object's change to its container server (an async pending on
the object's device when that fails, replayed by the updater), and a container's counts to its account servers."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from tinystack.object.common import hash_path, quote_path, suffix_of
from tinystack.object.policies import INDEX_HEADER
from tinystack.object.servers.base import NodeContext

log = logging.getLogger(__name__)


async def _send(node: NodeContext, method: str, host: str, path: str, headers: Mapping[str, str]) -> int:
    try:
        async with node.http().request(method, f"http://{host}{path}", headers=dict(headers)) as resp:
            await resp.read()
            return resp.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.info("update %s %s%s failed: %s", method, host, path, exc)
        return 503


async def send_container_update(node: NodeContext, root: Path, target: tuple[str, str, str], op: str, account: str,
                                container: str, obj: str, headers: Mapping[str, str]) -> None:
    host, device, partition = target
    status = await _send(node, op, host, quote_path(device, partition, account, container, obj), headers)
    if status < 300 or status == 409:
        return
    record = {"op": op, "account": account, "container": container, "obj": obj, "headers": dict(headers)}
    await asyncio.to_thread(write_pending, node, root, record)


def write_pending(node: NodeContext, root: Path, record: dict[str, Any]) -> None:
    s = node.settings
    name_hash = hash_path(s.hash_path_prefix, s.hash_path_suffix, record["account"], record["container"], record["obj"])
    directory = root / "async_pending" / suffix_of(name_hash)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name_hash}-{record['headers']['X-Timestamp']}"
    tmp = root / "tmp" / f"pending-{name_hash}-{os.getpid()}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w") as f:
        json.dump(record, f)
        f.flush()
        if s.fsync:
            os.fsync(f.fileno())
    os.replace(tmp, target)


def pending_files(devices: Path) -> list[Path]:
    out: list[Path] = []
    if not devices.is_dir():
        return out
    for dev in devices.iterdir():
        base = dev / "async_pending"
        if base.is_dir():
            out.extend(p for suffix in base.iterdir() if suffix.is_dir() for p in suffix.iterdir())
    return out


async def replay_pendings(node: NodeContext) -> int:
    """Send every async pending to all the container's primaries; a pending goes once each of them took it."""
    ring = node.rings.get("container")
    if ring is None:
        return 0
    done = 0
    for path in await asyncio.to_thread(pending_files, node.settings.devices):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        part, nodes = ring.get_nodes(record["account"], record["container"])
        ok = True
        for dev in nodes:
            status = await _send(node, record["op"], f"{dev.ip}:{dev.port}",
                                 quote_path(dev.device, str(part), record["account"], record["container"], record["obj"]),
                                 record["headers"])
            ok = ok and (status < 300 or status == 409)
        if ok:
            path.unlink(missing_ok=True)
            done += 1
    return done


async def send_account_update(node: NodeContext, account: str, container: str, stat: Mapping[str, Any]) -> bool:
    """A container's put/delete timestamps and counts to every primary of its account; True when all took it."""
    ring = node.rings.get("account")
    if ring is None:
        return False
    part, nodes = ring.get_nodes(account)
    headers = {"X-Put-Timestamp": stat["put_timestamp"], "X-Delete-Timestamp": stat["delete_timestamp"],
               "X-Object-Count": str(stat["object_count"]), "X-Bytes-Used": str(stat["bytes_used"]),
               "X-Timestamp": stat["put_timestamp"],
               INDEX_HEADER: str(stat.get("storage_policy_index", 0))}
    results = await asyncio.gather(*(
        _send(node, "PUT", f"{dev.ip}:{dev.port}", quote_path(dev.device, str(part), account, container), headers)
        for dev in nodes))
    return all(r < 300 for r in results)
