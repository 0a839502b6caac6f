"""Account and container database replication, Swift's db replicator over the storage servers' HTTP (no rsync).

Verbs on the account and container servers, marked ``X-Backend-Replication: true``: ``GET /<dev>/<part>/<hash>``
answers a replica's id, its sync hash (rows, timestamps, metadata) and its last row id, or 404 when the device has
no such database; ``POST /<dev>/<part>/<hash>`` with ``{"info": stat and metadata, "rows": [...]}`` merges a batch
of rows (newest timestamp wins, as for a live update) and creates the database first if it is missing.

The pass: for every database on this node's devices, every other primary of its partition whose hash differs gets
the rows changed since the last row it took from this replica (all rows when it has no copy: a wiped device's
listings come back), in batches. Each database keeps its sync points per remote replica id (a table of its own),
so a remote database that was wiped and made again, having a new id, gets every row. A database on a handoff
device is removed once every primary took it.

Reclaim (Swift's ``reclaim_age``): each pass first removes the deleted rows older than ``[object] reclaim_age``
(at most every ``RECLAIM_EVERY`` seconds per database) and a deleted database with no live row left whose delete
is that old. The sync hash is O(rows): it is computed in the node's I/O threads over a connection of its own
and kept until the database changes (its connection's change count, or SQLite's ``data_version`` for another
connection's writes), so an idle pass costs no row scan."""

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
from aiohttp import web

from tinystack.object.common import normalize_timestamp, quote_path, status_error
from tinystack.object.servers.base import Handler, NodeContext
from tinystack.object.servers.db import Broker, BrokerCache, db_path
from tinystack.object.servers.replication import HASH, MARK, partition_of, path_parts
from tinystack.object.servers.replicator import local_devices

log = logging.getLogger(__name__)

BATCH = 1000  # rows per push
MAX_BODY = 64 * 1024 * 1024
KEPT_HASHES = 65536  # databases whose sync hash is kept
RECLAIM_EVERY = 3600.0  # seconds between two reclaims of one database's rows (fewer when reclaim_age is short)
# The column holding a deleted row's delete time, per kind (a container's object row keeps it as its timestamp).
DELETED_AT = {"container": "created_at", "account": "delete_timestamp"}


@dataclass
class DbStats:
    databases: int = 0
    in_sync: int = 0
    rows_pushed: int = 0
    created: int = 0  # whole databases sent to a replica that had none
    removed_handoffs: int = 0
    failures: int = 0
    seconds: float = 0.0
    reclaimed_rows: int = 0
    reclaimed_databases: int = 0


def _fresh_hash(factory: type[Broker], path: Path) -> str:
    """Blocking. The sync hash read over a connection of its own (a WAL reader: the server's writes go on)."""
    broker = factory(path)
    try:
        return broker.sync_hash()
    finally:
        broker.close()


class SyncHashes:
    """Each database's sync hash, kept until the database changes; computed off the event loop."""

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self._kept: dict[Path, tuple[object, int, int, str]] = {}

    async def get(self, broker: Broker) -> str:
        conn = broker.conn
        version = (conn.total_changes, int(conn.execute("PRAGMA data_version").fetchone()[0]))
        kept = self._kept.get(broker.path)
        if kept is not None and kept[0] is conn and kept[1:3] == version:
            return kept[3]
        value = await self.node.run(_fresh_hash, type(broker), broker.path)
        # Keyed by what was seen before hashing: a change made meanwhile is hashed again at the next ask.
        if len(self._kept) >= KEPT_HASHES:
            self._kept.clear()
        self._kept[broker.path] = (conn, *version, value)
        return value

    def drop(self, path: Path) -> None:
        self._kept.pop(path, None)


def reclaim(broker: Broker, kind: str, before: str) -> int:
    """Removes the deleted rows whose delete is older than ``before`` (a normalized timestamp); how many."""
    with broker.transaction() as c:
        cursor = c.execute(f"DELETE FROM {broker.ROW_TABLE} WHERE deleted = 1 AND {DELETED_AT[kind]} < ?", (before,))
        return int(cursor.rowcount)


def reclaimable(broker: Broker, before: str) -> bool:
    """A deleted database (account or container) with no live row left, deleted before ``before``."""
    if not broker.is_deleted() or broker.stat()["delete_timestamp"] >= before:
        return False
    return broker.conn.execute(f"SELECT 1 FROM {broker.ROW_TABLE} WHERE deleted = 0 LIMIT 1").fetchone() is None


class DbVerbs:
    """The replication verbs of one server kind ("account" or "container")."""

    def __init__(self, node: NodeContext, kind: str, brokers: BrokerCache, hashes: SyncHashes | None = None) -> None:
        self.node, self.kind, self.brokers = node, kind, brokers
        self.hashes = hashes or SyncHashes(node)

    def _broker(self, request: web.Request) -> Broker:
        device, part, name_hash = path_parts(request, 3)
        if not HASH.match(name_hash):
            raise status_error(400, f"Invalid database hash {name_hash!r}")
        root = self.node.device_root(device)
        return self.brokers.get(db_path(root, self.kind, partition_of(part), name_hash))

    async def state(self, request: web.Request) -> web.StreamResponse:
        broker = self._broker(request)
        if not broker.exists:
            return web.Response(status=404)
        return web.json_response({"id": broker.db_id(), "hash": await self.hashes.get(broker),
                                  "max_row": broker.max_row()})

    async def merge(self, request: web.Request) -> web.StreamResponse:
        broker = self._broker(request)
        try:
            body = json.loads(await request.content.read(MAX_BODY))
            info, rows = body["info"], body["rows"]
            if not isinstance(info, dict) or not isinstance(rows, list):
                raise ValueError("info and rows")
            if not broker.exists:
                self._create(broker, info)
            broker.merge_stat(info)
            broker.merge_rows(rows)
        except (ValueError, KeyError, TypeError) as exc:
            raise status_error(400, f"Invalid replication push: {exc}") from None
        return web.json_response({"id": broker.db_id(), "hash": await self.hashes.get(broker)})

    def _create(self, broker: Broker, info: dict[str, Any]) -> None:
        created = str(info["created_at"])
        if self.kind == "container":
            broker.initialize(str(info["account"]), str(info["container"]), created)  # type: ignore[attr-defined]
        else:
            broker.initialize(str(info["account"]), created)  # type: ignore[attr-defined]


def with_db_verbs(node: NodeContext, kind: str, brokers: BrokerCache, handlers: dict[str, Handler],
                  hashes: SyncHashes | None = None) -> dict[str, Handler]:
    """``handlers`` with GET and POST sent to the replication verbs when the request carries the mark."""
    verbs = DbVerbs(node, kind, brokers, hashes)
    get, post = handlers["GET"], handlers["POST"]

    async def route_get(request: web.Request) -> web.StreamResponse:
        return await (verbs.state if request.headers.get(MARK) == "true" else get)(request)

    async def route_post(request: web.Request) -> web.StreamResponse:
        return await (verbs.merge if request.headers.get(MARK) == "true" else post)(request)

    return {**handlers, "GET": route_get, "POST": route_post}


def local_databases(root: Path, kind: str) -> list[tuple[int, Path]]:
    """Blocking. ``(partition, path)`` of every database of ``kind`` on a device."""
    out: list[tuple[int, Path]] = []
    base = root / f"{kind}s"
    try:
        parts = [p for p in os.listdir(base) if p.isdigit()]
    except FileNotFoundError:
        return out
    for part in parts:
        out.extend((int(part), db) for db in (base / part).glob("*/*/*.db"))
    return out


class DbReplicator:
    """One node's replicator of the ``kind`` databases (its server's open brokers are shared with it)."""

    def __init__(self, node: NodeContext, kind: str, brokers: BrokerCache, hashes: SyncHashes | None = None) -> None:
        self.node, self.kind, self.brokers = node, kind, brokers
        self.hashes = hashes or SyncHashes(node)
        self._reclaimed: dict[Path, float] = {}

    async def _call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        try:
            async with self.node.http().request(method, url, headers={MARK: "true"},
                                                data=None if body is None else json.dumps(body)) as resp:
                data = await resp.read()
                return resp.status, json.loads(data) if resp.status == 200 else None
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            log.info("db replicator %s %s failed: %s", method, url, exc)
            return 0, None

    async def sync_db(self, broker: Broker, partition: int, target: Any, stats: DbStats) -> bool:
        """Makes ``target`` hold every row of ``broker`` (and its timestamps and metadata); True once it does."""
        name_hash = broker.path.parent.name
        url = f"http://{target.ip}:{target.port}{quote_path(target.device, str(partition), name_hash)}"
        status, remote = await self._call("GET", url)
        if status not in (200, 404):
            return False
        if remote is not None and remote.get("hash") == await self.hashes.get(broker):
            stats.in_sync += 1
            return True
        since = broker.sync_point(str(remote["id"])) if remote is not None else 0
        if remote is None:
            stats.created += 1
        info = broker.replication_info()
        remote_id = ""
        while True:
            rows = broker.rows_since(since, BATCH)
            status, answer = await self._call("POST", url, {"info": info, "rows": rows})
            if status != 200 or answer is None:
                return False
            remote_id = str(answer["id"])
            stats.rows_pushed += len(rows)
            if rows:
                since = int(rows[-1]["rowid"])
            if len(rows) < BATCH:
                break
        if since != broker.sync_point(remote_id):
            broker.set_sync_point(remote_id, since)
        return True

    async def _reclaim(self, broker: Broker, stats: DbStats) -> bool:
        """Reclaims the database's old deleted rows (not more often than ``RECLAIM_EVERY``); True when the whole
        database was deleted long enough ago to go (then removed: the caller skips it)."""
        age = self.node.settings.reclaim_age
        now = time.monotonic()
        last = self._reclaimed.get(broker.path)
        if last is not None and now - last < min(RECLAIM_EVERY, age / 4):
            return False
        self._reclaimed[broker.path] = now
        before = normalize_timestamp(time.time() - age)
        if reclaimable(broker, before):
            await self._remove(broker.path)
            stats.reclaimed_databases += 1
            return True
        stats.reclaimed_rows += reclaim(broker, self.kind, before)
        return False

    async def _remove(self, path: Path) -> None:
        self.brokers.drop(path)
        self.hashes.drop(path)
        self._reclaimed.pop(path, None)
        await asyncio.to_thread(shutil.rmtree, path.parent, True)

    async def replicate_once(self, port: int) -> DbStats:
        stats = DbStats()
        started = time.monotonic()
        ring = self.node.rings.get(self.kind)
        if ring is not None:
            for dev in local_devices(self.node, port, self.kind):
                root = self.node.settings.devices / dev.device
                for partition, path in await asyncio.to_thread(local_databases, root, self.kind):
                    stats.databases += 1
                    primaries = ring.get_part_nodes(partition)
                    others = [p for p in primaries if p.id != dev.id]
                    broker = self.brokers.get(path)
                    try:
                        if await self._reclaim(broker, stats):
                            continue
                        results = [await self.sync_db(broker, partition, t, stats) for t in others]
                    except Exception:
                        log.exception("db replicator: %s failed", path)
                        results = [False]
                    stats.failures += results.count(False)
                    if not any(p.id == dev.id for p in primaries) and all(results):
                        await self._remove(path)
                        stats.removed_handoffs += 1
        stats.seconds = time.monotonic() - started
        record = {**stats.__dict__, "finished": time.time()}
        out = self.node.settings.devices / f"{self.kind}_replication.json"
        await asyncio.to_thread(out.write_text, json.dumps(record))
        return stats
