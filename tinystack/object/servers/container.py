"""The container server: one SQLite database per container replica (its object rows, counts and metadata), fed by
the object servers' updates, and reporting its counts to the account servers shortly after they change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import query_bool
from tinystack.object import policies
from tinystack.object.common import hash_path, parse_timestamp, status_error
from tinystack.object.servers.base import BackendPath, NodeContext, build_app, parse_path, user_metadata
from tinystack.object.servers.containerdb import ContainerBroker
from tinystack.object.servers.db import BrokerCache, db_path
from tinystack.object.servers.dbreplicator import with_db_verbs
from tinystack.object.servers.listing import FORMAT_HEADER, LAYOUTS, ListParams, render
from tinystack.object.servers.recon import with_recon
from tinystack.object.servers.updates import BATCH_MARK, send_account_update

log = logging.getLogger(__name__)

PATHS_KEPT = 4096  # container DB paths remembered by (device, partition, account, container)


def list_params(request: web.Request, max_limit: int) -> ListParams:
    q = request.query
    try:
        limit = int(q.get("limit", max_limit))
    except ValueError:
        raise status_error(412, "Value of limit must be an integer") from None
    if limit < 0 or limit > max_limit:
        raise status_error(412, f"Maximum limit is {max_limit}")
    for key in ("marker", "end_marker", "prefix", "delimiter"):
        if len(q.get(key, "").encode()) > 1024:
            raise status_error(412, f"Bad {key}")
    delimiter = q.get("delimiter", "")
    if len(delimiter) > 1:
        raise status_error(412, "Bad delimiter")
    return ListParams(limit, q.get("marker", ""), q.get("end_marker", ""), q.get("prefix", ""), delimiter,
                      bool(query_bool(request, "reverse")))


def listing_response(request: web.Request, kind: str, name: str, conn: sqlite3.Connection, max_limit: int,
                     headers: dict[str, str]) -> web.Response:
    """A GET's listing: in the client's format when the proxy asks for one (``format=json|xml|plain``), so the
    proxy passes the body on as it is; without, the rows as stored, in JSON (what the middleware reads)."""
    fmt = request.query.get("format", "")
    layout = LAYOUTS[kind].get(fmt)
    if layout is None:
        raise status_error(400, f"Invalid format {fmt!r}")
    body = render(conn, kind, fmt, name, list_params(request, max_limit))
    if fmt:
        headers[FORMAT_HEADER] = fmt
    headers["Content-Type"] = f"{layout.content_type}; charset=utf-8"
    if body is None:
        return web.Response(status=204, headers=headers)
    return web.Response(status=200, body=body, headers=headers)


def _update_row(u: dict[str, Any]) -> tuple[str, str, int, str, str, bool]:
    """One batched update as a container row; raises for a malformed one (400 for it alone)."""
    h = u["headers"]
    obj, op = u["obj"], u["op"]
    if not isinstance(h, dict) or not isinstance(obj, str) or not obj or op not in ("PUT", "DELETE"):
        raise ValueError("malformed update")
    ts = parse_timestamp(h.get("X-Timestamp"))
    if op == "DELETE":
        return obj, ts, 0, "", "", True
    return obj, ts, int(h.get("X-Size", "0")), str(h.get("X-Content-Type", "")), str(h.get("X-Etag", "")), False


def meta_headers(broker_meta: dict[str, str]) -> dict[str, str]:
    return {"-".join(w.capitalize() for w in k.split("-")): v for k, v in broker_meta.items()}


class ContainerServer:
    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.s = node.settings
        self.brokers = BrokerCache(ContainerBroker)
        self._pending: dict[tuple[str, str], ContainerBroker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._paths: dict[tuple[str, int, str, str], Path] = {}

    def app(self) -> web.Application:
        return build_app(with_recon(self.node, with_db_verbs(self.node, "container", self.brokers, {
            "PUT": self.put, "GET": self.get, "HEAD": self.get, "DELETE": self.delete, "POST": self.post})))

    def _broker(self, p: BackendPath) -> ContainerBroker:
        root = self.node.device_root(p.device)
        key = (p.device, p.partition, p.account, p.container or "")
        path = self._paths.get(key)
        if path is None:
            # Hashing the name and building the path cost more than the update itself: kept per container.
            name_hash = hash_path(self.s.hash_path_prefix, self.s.hash_path_suffix, p.account, p.container)
            path = db_path(root, "container", p.partition, name_hash)
            if len(self._paths) >= PATHS_KEPT:
                self._paths.clear()
            self._paths[key] = path
        broker = self.brokers.get(path)
        assert isinstance(broker, ContainerBroker)
        return broker

    async def put(self, request: web.Request) -> web.StreamResponse:
        p = parse_path(request, 4, 5)
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        broker = self._broker(p)
        if p.obj is not None:
            if not broker.exists:
                return web.Response(status=404)
            h = request.headers
            try:
                size = int(h.get("X-Size", "0"))
            except ValueError:
                raise status_error(400, "Invalid X-Size") from None
            if broker.put_object(p.obj, ts, size, h.get("X-Content-Type", ""), h.get("X-Etag", ""), deleted=False):
                self._schedule_report(p, broker)
            return web.Response(status=201)
        meta = user_metadata(request.headers, "container", ts)
        # The storage policy is chosen when the container is created and never changes while it exists.
        wanted = request.headers.get(policies.INDEX_HEADER)
        live = broker.exists and not broker.is_deleted()
        if live:
            current = broker.metadata().get(policies.META_KEY, "0")
            if wanted is not None and wanted != current:
                return web.Response(status=409, headers={policies.INDEX_HEADER: current},
                                    text="The container's storage policy cannot change.")
        else:
            chosen = wanted or request.headers.get(policies.DEFAULT_HEADER) or "0"
            if not chosen.isdigit() or policies.by_index(self.s.policies, int(chosen)) is None:
                raise status_error(400, f"Invalid storage policy index {chosen!r}")
            # Written with the PUT's timestamp: the newest re-creation's choice wins on every replica.
            meta[policies.META_KEY] = (chosen, ts)
        if not broker.exists:
            broker.initialize(p.account, p.container or "", ts)
            broker.update_metadata_now(meta)
            created = True
        else:
            created = broker.put(ts, meta)
        await self._report(p, broker)
        return web.Response(status=201 if created else 202)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        p = parse_path(request, 4, 5)
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        broker = self._broker(p)
        if not broker.exists:
            return web.Response(status=404)
        if p.obj is not None:
            if broker.put_object(p.obj, ts, 0, "", "", deleted=True):
                self._schedule_report(p, broker)
            return web.Response(status=204)
        if broker.is_deleted():
            return web.Response(status=404)
        if not broker.is_empty():
            return web.Response(status=409, text="There was a conflict when trying to complete your request.")
        broker.delete(ts)
        await self._report(p, broker)
        return web.Response(status=204)

    async def get(self, request: web.Request) -> web.StreamResponse:
        p = parse_path(request, 4, 4)
        broker = self._broker(p)
        if not broker.exists or broker.is_deleted():
            return web.Response(status=404)
        s = broker.stat()
        headers = {"X-Container-Object-Count": str(s["object_count"]), "X-Container-Bytes-Used": str(s["bytes_used"]),
                   "X-Timestamp": s["created_at"], "X-Put-Timestamp": s["put_timestamp"],
                   "X-Backend-Put-Timestamp": s["put_timestamp"], policies.INDEX_HEADER: "0",
                   **meta_headers(broker.metadata())}
        if request.method == "HEAD":
            return web.Response(status=204, headers=headers)
        return listing_response(request, "container", p.container or "", broker.conn,
                                self.s.container_listing_limit, headers)

    async def post(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get(BATCH_MARK):
            return await self._batch(request)
        p = parse_path(request, 4, 4)
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        broker = self._broker(p)
        if not broker.exists or broker.is_deleted():
            return web.Response(status=404)
        broker.update_metadata_now(user_metadata(request.headers, "container", ts))
        return web.Response(status=204)

    async def _batch(self, request: web.Request) -> web.StreamResponse:
        """Object updates sent together by an object server (updates.UpdateBatcher): a JSON list of {device,
        partition, op, account, container, obj, headers}; the answer is the list of the status each would have
        had alone. The updates of one container are recorded in one transaction."""
        try:
            updates = await request.json()
        except ValueError:
            raise status_error(400, "Invalid JSON body") from None
        if not isinstance(updates, list) or not all(isinstance(u, dict) for u in updates):
            raise status_error(400, "Expected a list of updates")
        return web.json_response(self.apply_updates(updates))

    def apply_updates(self, updates: list[dict[str, Any]]) -> list[int]:
        """Object updates (each {device, partition, op, account, container, obj, headers}), those of one container
        in one transaction; the status each would have had alone. What a batch ``POST`` does, and what an object
        server of this process calls directly (local.py)."""
        statuses = [400] * len(updates)
        groups: dict[tuple[str, int, str, str], list[tuple[int, tuple[str, str, int, str, str, bool]]]] = {}
        for i, u in enumerate(updates):
            try:
                row = _update_row(u)
                key = (str(u["device"]), int(u["partition"]), str(u["account"]), str(u["container"]))
            except (errors.TinyError, KeyError, TypeError, ValueError):
                continue
            if not all((key[0], key[2], key[3])) or key[1] < 0:
                continue
            groups.setdefault(key, []).append((i, row))
        for (device, partition, account, container), rows in groups.items():
            p = BackendPath(device, partition, account, container)
            try:
                broker = self._broker(p)
            except errors.TinyError as err:
                for i, _ in rows:
                    statuses[i] = err.status
                continue
            if not broker.exists:
                for i, _ in rows:
                    statuses[i] = 404
                continue
            try:
                changed = broker.put_objects([row for _, row in rows])
            except sqlite3.Error as exc:
                # This container's updates alone fail (the sender leaves them pending and replays them later),
                # e.g. a damaged database file or one another process holds locked.
                log.warning("object updates to container %s/%s failed: %s", account, container, exc)
                for i, _ in rows:
                    statuses[i] = 503
                continue
            for i, row in rows:
                statuses[i] = 204 if row[5] else 201
            if any(changed):
                self._schedule_report(p, broker)
        return statuses

    # --- counts to the account -------------------------------------------------------------------------------

    async def _report(self, p: BackendPath, broker: ContainerBroker) -> None:
        stat = broker.needs_report()
        if stat is not None:
            # The account keeps its usage per storage policy.
            stat = {**stat, "storage_policy_index": broker.metadata().get(policies.META_KEY, "0")}
        if stat is not None and await send_account_update(self.node, p.account, p.container or "", stat):
            broker.mark_reported(stat)
        elif stat is not None:
            self._pending[(p.account, p.container or "")] = broker

    def _schedule_report(self, p: BackendPath, broker: ContainerBroker) -> None:
        key = (p.account, p.container or "")
        if key in self._pending:
            return
        self._pending[key] = broker
        task = asyncio.get_running_loop().create_task(self._delayed(p))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delayed(self, p: BackendPath) -> None:
        await asyncio.sleep(self.s.account_update_delay)
        broker = self._pending.pop((p.account, p.container or ""), None)
        if broker is not None:
            await self._report(p, broker)

    async def flush(self) -> None:
        """Report every container whose counts the account has not taken yet (the updater calls this)."""
        for (account, container), broker in list(self._pending.items()):
            self._pending.pop((account, container), None)
            await self._report(BackendPath("", 0, account, container), broker)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.brokers.close()
