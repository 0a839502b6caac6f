"""The account server: one SQLite database per account replica, listing the account's containers with the counts
their container servers report, and holding the account's metadata."""

from __future__ import annotations

from aiohttp import web

from tinystack.object import policies
from tinystack.object.common import hash_path, parse_timestamp, status_error
from tinystack.object.servers.accountdb import AccountBroker
from tinystack.object.servers.base import BackendPath, NodeContext, build_app, parse_path, user_metadata
from tinystack.object.servers.container import listing_response, meta_headers
from tinystack.object.servers.db import BrokerCache, db_path
from tinystack.object.servers.dbreplicator import with_db_verbs
from tinystack.object.servers.recon import with_recon


class AccountServer:
    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.s = node.settings
        self.brokers = BrokerCache(AccountBroker)

    def app(self) -> web.Application:
        return build_app(with_recon(self.node, with_db_verbs(self.node, "account", self.brokers, {
            "PUT": self.put, "GET": self.get, "HEAD": self.get, "POST": self.post, "DELETE": self.delete})))

    def _broker(self, p: BackendPath) -> AccountBroker:
        root = self.node.device_root(p.device)
        name_hash = hash_path(self.s.hash_path_prefix, self.s.hash_path_suffix, p.account)
        broker = self.brokers.get(db_path(root, "account", p.partition, name_hash))
        assert isinstance(broker, AccountBroker)
        return broker

    async def put(self, request: web.Request) -> web.StreamResponse:
        p = parse_path(request, 3, 4)
        broker = self._broker(p)
        if p.container is not None:
            # A container server's report. The account comes into being with its first container (autocreate).
            h = request.headers
            put_ts = parse_timestamp(h.get("X-Put-Timestamp"), "X-Put-Timestamp")
            delete_ts = h.get("X-Delete-Timestamp", "0")
            delete_ts = parse_timestamp(delete_ts, "X-Delete-Timestamp") if delete_ts != "0" else "0"
            if not broker.exists:
                broker.initialize(p.account, put_ts)
            policy = h.get(policies.INDEX_HEADER, "0")
            if not policy.isdigit():
                raise status_error(400, f"Invalid {policies.INDEX_HEADER}: {policy!r}")
            broker.put_container(p.container, put_ts, delete_ts, int(h.get("X-Object-Count", "0")),
                                 int(h.get("X-Bytes-Used", "0")), int(policy))
            return web.Response(status=201)
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        meta = user_metadata(request.headers, "account", ts)
        if not broker.exists:
            broker.initialize(p.account, ts)
            broker.update_metadata_now(meta)
            return web.Response(status=201)
        broker.put(ts, meta)
        return web.Response(status=202)

    async def get(self, request: web.Request) -> web.StreamResponse:
        p = parse_path(request, 3, 3)
        broker = self._broker(p)
        if not broker.exists or broker.is_deleted():
            return web.Response(status=404)
        s = broker.stat()
        headers = {"X-Account-Container-Count": str(s["container_count"]),
                   "X-Account-Object-Count": str(s["object_count"]), "X-Account-Bytes-Used": str(s["bytes_used"]),
                   "X-Timestamp": s["created_at"], "X-Put-Timestamp": s["put_timestamp"],
                   **meta_headers(broker.metadata())}
        for index, (containers, objects, used) in broker.policy_stats().items():
            headers.update({f"X-Backend-Policy-{index}-Container-Count": str(containers),
                            f"X-Backend-Policy-{index}-Object-Count": str(objects),
                            f"X-Backend-Policy-{index}-Bytes-Used": str(used)})
        if request.method == "HEAD":
            return web.Response(status=204, headers=headers)
        return listing_response(request, "account", p.account, broker.conn, self.s.account_listing_limit, headers)

    async def post(self, request: web.Request) -> web.StreamResponse:
        p = parse_path(request, 3, 3)
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        broker = self._broker(p)
        if not broker.exists or broker.is_deleted():
            return web.Response(status=404)
        broker.update_metadata_now(user_metadata(request.headers, "account", ts))
        return web.Response(status=204)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        p = parse_path(request, 3, 3)
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        broker = self._broker(p)
        if not broker.exists or broker.is_deleted():
            return web.Response(status=404)
        with broker.transaction() as c:
            c.execute("UPDATE stat SET delete_timestamp = ?, status_changed_at = ?", (ts, ts))
        return web.Response(status=204)

    async def close(self) -> None:
        self.brokers.close()
