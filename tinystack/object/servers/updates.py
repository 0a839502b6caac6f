"""The updates one storage server sends another: an object's change to its container server (an async pending on
the object's device when that fails, replayed by the updater), and a container's counts to its account servers.

Object changes bound for one container server travel together: while one batch is on its way, the next ones
queue, then go as one ``POST`` (``X-Backend-Updates``, a JSON list) that the container server applies in one
transaction per container. Each object server still answers only once its own update was taken or left pending,
so a listing is never behind an answered write; the batch saves the HTTP round trips, not the guarantee."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from tinystack.object import local
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


BATCH_MARK = "X-Backend-Updates"
BATCH_LIMIT = 256  # updates in one batch request


class UpdateBatcher:
    """Object updates per container server: the first goes at once; those that come while one is in flight wait
    for it and then go together."""

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self._queues: dict[str, list[tuple[dict[str, Any], asyncio.Future[int]]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def send(self, host: str, update: dict[str, Any]) -> int:
        """``update``: device, partition, op, account, container, obj, headers. The container server's status."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self._queues.setdefault(host, []).append((update, done))
        if host not in self._senders:
            self._senders[host] = loop.create_task(self._drain(host))
        return await done

    async def _drain(self, host: str) -> None:
        try:
            while queue := self._queues.pop(host, None):
                if len(queue) > BATCH_LIMIT:
                    self._queues[host] = [*queue[BATCH_LIMIT:], *self._queues.get(host, [])]
                    queue = queue[:BATCH_LIMIT]
                try:
                    statuses = await self._post(host, [u for u, _ in queue])
                except BaseException:
                    for _, done in queue:
                        if not done.done():
                            done.set_result(503)
                    raise
                for (_, done), status in zip(queue, statuses, strict=True):
                    if not done.done():
                        done.set_result(status)
        finally:
            self._senders.pop(host, None)
            for _, done in self._queues.pop(host, []):  # only when cancelled (the node stops)
                if not done.done():
                    done.set_result(503)

    async def _post(self, host: str, updates: list[dict[str, Any]]) -> list[int]:
        apply = local.updates_served(host)
        if apply is not None:
            # A container server of this process: the same batch, without the HTTP message pair and the JSON.
            try:
                return apply(updates)
            except Exception:
                log.exception("updates to the container server at %s failed", host)
                return [503] * len(updates)
        if len(updates) == 1:
            u = updates[0]
            return [await _send(self.node, u["op"], host, quote_path(u["device"], u["partition"], u["account"],
                                                                     u["container"], u["obj"]), u["headers"])]
        try:
            async with self.node.http().post(f"http://{host}/", json=updates, headers={BATCH_MARK: "true"}) as resp:
                if resp.status == 200:
                    statuses = await resp.json()
                    if isinstance(statuses, list) and len(statuses) == len(updates):
                        return [int(s) for s in statuses]
                await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            log.info("batched updates to %s failed: %s", host, exc)
            return [503] * len(updates)
        # A container server that does not take batches: one at a time.
        return [(await self._post(host, [u]))[0] for u in updates]

    async def close(self) -> None:
        for task in list(self._senders.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def send_container_update(node: NodeContext, root: Path, target: tuple[str, str, str], op: str, account: str,
                                container: str, obj: str, headers: Mapping[str, str]) -> None:
    host, device, partition = target
    if node.updates is None:
        node.updates = UpdateBatcher(node)
    status = await node.updates.send(host, {"device": device, "partition": partition, "op": op, "account": account,
                                            "container": container, "obj": obj, "headers": dict(headers)})
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
