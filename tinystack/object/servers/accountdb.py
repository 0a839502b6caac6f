"""An account's database: one row per container with the counts its container servers last reported."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from tinystack.object.servers.db import Broker
from tinystack.object.servers.listing import ListParams, walk


class AccountBroker(Broker):
    SCHEMA = """
    CREATE TABLE container (name TEXT PRIMARY KEY, put_timestamp TEXT NOT NULL, delete_timestamp TEXT NOT NULL,
        object_count INTEGER NOT NULL, bytes_used INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
        storage_policy_index INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX ix_container_deleted_name ON container (deleted, name);
    CREATE TABLE stat (account TEXT, created_at TEXT, put_timestamp TEXT, delete_timestamp TEXT,
        status_changed_at TEXT, container_count INTEGER, object_count INTEGER, bytes_used INTEGER, metadata TEXT)
    """

    ROW_TABLE = "container"
    ROW_COLUMNS = "name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, storage_policy_index"
    ROW_KEY = "name, put_timestamp, delete_timestamp, object_count, bytes_used, storage_policy_index"

    def upgrade(self, conn: sqlite3.Connection) -> None:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(container)")}
        if columns and "storage_policy_index" not in columns:
            conn.execute("ALTER TABLE container ADD COLUMN storage_policy_index INTEGER NOT NULL DEFAULT 0")

    def merge_rows(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.put_container(str(r["name"]), str(r["put_timestamp"]), str(r["delete_timestamp"]),
                               int(r["object_count"]), int(r["bytes_used"]), int(r.get("storage_policy_index") or 0))

    def policy_stats(self) -> dict[int, tuple[int, int, int]]:
        """``{policy index: (containers, objects, bytes)}`` over the live containers."""
        rows = self.conn.execute("SELECT storage_policy_index, COUNT(*), COALESCE(SUM(object_count), 0), "
                                 "COALESCE(SUM(bytes_used), 0) FROM container WHERE deleted = 0 "
                                 "GROUP BY storage_policy_index").fetchall()
        return {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}

    def initialize(self, account: str, timestamp: str) -> None:
        self.create()
        with self.transaction() as c:
            c.execute("INSERT INTO stat VALUES (?, ?, ?, '0', ?, 0, 0, 0, '{}')", (account, timestamp, timestamp, timestamp))

    def put(self, timestamp: str, metadata: Mapping[str, tuple[str, str]]) -> None:
        with self.transaction() as c:
            c.execute("UPDATE stat SET put_timestamp = ?, status_changed_at = ? WHERE put_timestamp < ?",
                      (timestamp, timestamp, timestamp))
            self.update_metadata(c, metadata)

    def put_container(self, name: str, put_ts: str, delete_ts: str, objects: int, used: int, policy: int = 0) -> None:
        """A container server's report; the newer of put/delete decides whether the row counts."""
        deleted = delete_ts > put_ts
        with self.transaction() as c:
            old = c.execute("SELECT * FROM container WHERE name = ?", (name,)).fetchone()
            if old is not None:
                put_ts, delete_ts = max(put_ts, old["put_timestamp"]), max(delete_ts, old["delete_timestamp"])
                deleted = delete_ts > put_ts
            if deleted:
                objects = used = 0
            if old is None:
                d_containers, d_objects, d_bytes = (0 if deleted else 1), objects, used
            else:
                d_containers = (0 if deleted else 1) - (0 if old["deleted"] else 1)
                d_objects, d_bytes = objects - old["object_count"], used - old["bytes_used"]
            c.execute("INSERT OR REPLACE INTO container VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (name, put_ts, delete_ts, objects, used, int(deleted), policy))
            c.execute("UPDATE stat SET container_count = container_count + ?, object_count = object_count + ?,"
                      " bytes_used = bytes_used + ?", (d_containers, d_objects, d_bytes))

    def list_containers(self, params: ListParams) -> list[dict[str, Any]]:
        return walk(self.conn, "container", "name, object_count, bytes_used, put_timestamp", params)
