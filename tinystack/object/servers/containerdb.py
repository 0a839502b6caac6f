"""A container's database: its object rows (newest X-Timestamp wins, deletes kept as tombstone rows), its counts
and metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinystack.object.servers.db import Broker
from tinystack.object.servers.listing import ListParams, walk


class ContainerBroker(Broker):
    SCHEMA = """
    CREATE TABLE object (name TEXT PRIMARY KEY, created_at TEXT NOT NULL, size INTEGER NOT NULL,
        content_type TEXT NOT NULL, etag TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX ix_object_deleted_name ON object (deleted, name);
    CREATE TABLE stat (account TEXT, container TEXT, created_at TEXT, put_timestamp TEXT, delete_timestamp TEXT,
        status_changed_at TEXT, object_count INTEGER, bytes_used INTEGER, metadata TEXT,
        reported_object_count INTEGER, reported_bytes_used INTEGER, reported_put_timestamp TEXT,
        reported_delete_timestamp TEXT)
    """

    ROW_TABLE = "object"
    ROW_COLUMNS = "name, created_at, size, content_type, etag, deleted"
    ROW_KEY = "name, created_at, deleted"

    def merge_rows(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.put_object(str(r["name"]), str(r["created_at"]), int(r["size"]), str(r["content_type"]),
                            str(r["etag"]), bool(r["deleted"]))

    def initialize(self, account: str, container: str, timestamp: str) -> None:
        # The stat row with the tables, in one transaction: a crash between the two left a database without it.
        self.create(("INSERT INTO stat VALUES (?, ?, ?, ?, '0', ?, 0, 0, '{}', -1, -1, '', '')",
                     (account, container, timestamp, timestamp, timestamp)))

    def put(self, timestamp: str, metadata: Mapping[str, tuple[str, str]]) -> bool:
        """Create or re-create; True when it did not exist (or was deleted) before."""
        with self.transaction() as c:
            row = c.execute("SELECT put_timestamp, delete_timestamp FROM stat").fetchone()
            was_deleted = row["delete_timestamp"] > row["put_timestamp"]
            if timestamp > row["put_timestamp"]:
                c.execute("UPDATE stat SET put_timestamp = ?, status_changed_at = ?", (timestamp, timestamp))
            self.update_metadata(c, metadata)
        return was_deleted

    def delete(self, timestamp: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE stat SET delete_timestamp = ?, status_changed_at = ? WHERE delete_timestamp < ?",
                      (timestamp, timestamp, timestamp))
            # Metadata goes with the container: a later PUT starts clean, as in Swift.
            c.execute("UPDATE stat SET metadata = '{}'")

    def is_empty(self) -> bool:
        return self.conn.execute("SELECT 1 FROM object WHERE deleted = 0 LIMIT 1").fetchone() is None

    def put_object(self, name: str, timestamp: str, size: int, content_type: str, etag: str, deleted: bool) -> bool:
        """Record an object's PUT or DELETE unless a newer one is already recorded; True when the row changed."""
        return self.put_objects([(name, timestamp, size, content_type, etag, deleted)])[0]

    def put_objects(self, rows: list[tuple[str, str, int, str, str, bool]]) -> list[bool]:
        """Several objects' PUTs or DELETEs (name, timestamp, size, content type, etag, deleted) in one
        transaction: one commit for a batch of updates. For each, True when its row changed."""
        changed: list[bool] = []
        d_count = d_bytes = 0
        with self.transaction() as c:
            for name, timestamp, size, content_type, etag, deleted in rows:
                old = c.execute("SELECT created_at, size, deleted FROM object WHERE name = ?", (name,)).fetchone()
                if old is not None and old["created_at"] >= timestamp:
                    changed.append(False)
                    continue
                d_count += (0 if deleted else 1) - (0 if old is None or old["deleted"] else 1)
                d_bytes += (0 if deleted else size) - (0 if old is None or old["deleted"] else old["size"])
                c.execute("INSERT OR REPLACE INTO object VALUES (?, ?, ?, ?, ?, ?)",
                          (name, timestamp, 0 if deleted else size, content_type, etag, int(deleted)))
                changed.append(True)
            if d_count or d_bytes:
                c.execute("UPDATE stat SET object_count = object_count + ?, bytes_used = bytes_used + ?",
                          (d_count, d_bytes))
        return changed

    def list_objects(self, params: ListParams) -> list[dict[str, Any]]:
        return walk(self.conn, "object", "name, created_at, size, content_type, etag", params)

    def needs_report(self) -> dict[str, Any] | None:
        """The stats to send to the account when they changed since the last report."""
        s = self.stat()
        if (s["object_count"], s["bytes_used"], s["put_timestamp"], s["delete_timestamp"]) == (
                s["reported_object_count"], s["reported_bytes_used"], s["reported_put_timestamp"],
                s["reported_delete_timestamp"]):
            return None
        return s

    def mark_reported(self, s: Mapping[str, Any]) -> None:
        with self.transaction() as c:
            c.execute("UPDATE stat SET reported_object_count = ?, reported_bytes_used = ?, reported_put_timestamp = ?,"
                      " reported_delete_timestamp = ?",
                      (s["object_count"], s["bytes_used"], s["put_timestamp"], s["delete_timestamp"]))
