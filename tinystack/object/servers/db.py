"""The SQLite databases of the account and container servers: one file per account or container, hash-named under
its device as in Swift, in WAL mode; metadata is a JSON map of name -> [value, timestamp] merged newest-wins."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinystack.object.common import suffix_of
from tinystack.object.servers import listing

WAL_LIMIT = 1024 * 1024


def db_path(device_root: Path, kind: str, partition: int, name_hash: str) -> Path:
    """``<device>/<kind>s/<partition>/<suffix>/<hash>/<hash>.db`` (kind: account or container)."""
    return device_root / f"{kind}s" / str(partition) / suffix_of(name_hash) / name_hash / f"{name_hash}.db"


class Broker:
    """One database file. Subclasses give the schema; the connection stays open (see ``BrokerCache``).

    For the database replicator (dbreplicator.py) a subclass names its row table and the columns that decide a
    row's version (``ROW_KEY``), and merges rows pushed from another replica (``merge_rows``)."""

    SCHEMA = ""
    ROW_TABLE = ""
    ROW_COLUMNS = ""
    ROW_KEY = ""
    # The stat fields a replica takes from another, newest (max) or oldest (min) winning.
    STAT_MAX = ("put_timestamp", "delete_timestamp", "status_changed_at")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @property
    def exists(self) -> bool:
        return self._conn is not None or self.path.exists()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL: a commit survives a process crash; Swift's replication covers a lost machine.
            conn.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints fsync: the storage node runs them in a thread (``checkpoint``), never on the event loop.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")  # a WAL restarted after a checkpoint shrinks
            listing.register(conn)
            self.upgrade(conn)
            self._conn = conn
        return self._conn

    def upgrade(self, conn: sqlite3.Connection) -> None:
        """Brings a database made by an older release up to the schema (a subclass adds what it added)."""

    def create(self, *rows: tuple[str, tuple[Any, ...]]) -> None:
        """The tables, and the ``rows`` (statement, parameters) in the same transaction: another connection
        sees a database with all of it or none."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as c:
            for statement in filter(None, (s.strip() for s in self.SCHEMA.split(";"))):
                c.execute(statement)
            for statement, params in rows:
                c.execute(statement, params)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stat(self) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM stat").fetchone()
        return dict(row) if row is not None else {}

    def metadata(self) -> dict[str, str]:
        """The live metadata: names whose newest value is not empty (an empty value deletes)."""
        raw = json.loads(self.stat().get("metadata") or "{}")
        return {k: v[0] for k, v in raw.items() if v[0] != ""}

    def update_metadata(self, c: sqlite3.Connection, new: Mapping[str, tuple[str, str]]) -> None:
        if not new:
            return
        raw = json.loads(c.execute("SELECT metadata FROM stat").fetchone()[0] or "{}")
        for key, (value, ts) in new.items():
            if key not in raw or raw[key][1] <= ts:
                raw[key] = [value, ts]
        c.execute("UPDATE stat SET metadata = ?", (json.dumps(raw),))

    def update_metadata_now(self, new: Mapping[str, tuple[str, str]]) -> None:
        if new:
            with self.transaction() as c:
                self.update_metadata(c, new)

    # --- replication --------------------------------------------------------------------------------------------

    def db_id(self) -> str:
        """This replica's id (sync points are kept per remote replica, and a re-created file is a new replica)."""
        conn = self.conn
        conn.execute("CREATE TABLE IF NOT EXISTS replica (id TEXT)")
        row = conn.execute("SELECT id FROM replica").fetchone()
        if row is not None:
            return str(row[0])
        new = uuid.uuid4().hex
        with self.transaction() as c:
            if c.execute("SELECT id FROM replica").fetchone() is None:
                c.execute("INSERT INTO replica VALUES (?)", (new,))
        return str(conn.execute("SELECT id FROM replica").fetchone()[0])

    def sync_point(self, remote_id: str) -> int:
        """The last of this database's rows the replica ``remote_id`` took (0: none yet)."""
        self.conn.execute("CREATE TABLE IF NOT EXISTS sync_point (remote_id TEXT PRIMARY KEY, row INTEGER)")
        row = self.conn.execute("SELECT row FROM sync_point WHERE remote_id = ?", (remote_id,)).fetchone()
        return int(row[0]) if row is not None else 0

    def set_sync_point(self, remote_id: str, rowid: int) -> None:
        with self.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS sync_point (remote_id TEXT PRIMARY KEY, row INTEGER)")
            c.execute("INSERT OR REPLACE INTO sync_point VALUES (?, ?)", (remote_id, rowid))

    def sync_hash(self) -> str:
        """An md5 over what replicas must agree on: the rows' versions, the timestamps and the metadata."""
        md5 = hashlib.md5(usedforsecurity=False)
        s = self.stat()
        md5.update(json.dumps([s.get(k) for k in self.STAT_MAX], separators=(",", ":")).encode())
        md5.update(json.dumps(json.loads(s.get("metadata") or "{}"), sort_keys=True).encode())
        for row in self.conn.execute(f"SELECT {self.ROW_KEY} FROM {self.ROW_TABLE} ORDER BY name"):
            md5.update("\x00".join(str(v) for v in row).encode() + b"\n")
        return md5.hexdigest()

    def max_row(self) -> int:
        return int(self.conn.execute(f"SELECT COALESCE(MAX(ROWID), 0) FROM {self.ROW_TABLE}").fetchone()[0])

    def rows_since(self, rowid: int, limit: int) -> list[dict[str, Any]]:
        """Rows changed after ``rowid`` (a changed row is re-inserted, so it gets a new, higher ROWID)."""
        rows = self.conn.execute(f"SELECT ROWID AS rowid, {self.ROW_COLUMNS} FROM {self.ROW_TABLE} "
                                 "WHERE ROWID > ? ORDER BY ROWID LIMIT ?", (rowid, limit)).fetchall()
        return [dict(r) for r in rows]

    def replication_info(self) -> dict[str, Any]:
        s = self.stat()
        return {**{k: v for k, v in s.items() if not k.startswith("reported_")},
                "metadata": json.loads(s.get("metadata") or "{}")}

    def merge_stat(self, info: Mapping[str, Any]) -> None:
        """Takes another replica's timestamps (newest wins) and metadata (newest per key wins)."""
        with self.transaction() as c:
            row = c.execute("SELECT * FROM stat").fetchone()
            for key in self.STAT_MAX:
                theirs = info.get(key)
                if isinstance(theirs, str) and theirs > row[key]:
                    c.execute(f"UPDATE stat SET {key} = ?", (theirs,))
            theirs_created = info.get("created_at")
            if isinstance(theirs_created, str) and theirs_created < row["created_at"]:
                c.execute("UPDATE stat SET created_at = ?", (theirs_created,))
            meta = info.get("metadata") or {}
            if isinstance(meta, dict):
                self.update_metadata(c, {str(k): (str(v[0]), str(v[1])) for k, v in meta.items()
                                         if isinstance(v, list) and len(v) == 2})

    def merge_rows(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def is_deleted(self) -> bool:
        """Deleted: a delete newer than the last put (a PUT after a DELETE brings it back, as in Swift)."""
        s = self.stat()
        return not s or s["delete_timestamp"] > s["put_timestamp"]


class BrokerCache:
    """Open brokers by path, least recently used closed beyond ``size``: opening a file per request costs more
    than the request."""

    def __init__(self, factory: type[Broker], size: int = 512) -> None:
        self.factory = factory
        self.size = size
        self._open: OrderedDict[Path, Broker] = OrderedDict()
        self._checkpointed: dict[Path, int] = {}

    def get(self, path: Path) -> Broker:
        broker = self._open.get(path)
        if broker is not None and broker._conn is not None and not path.exists():
            # The file went away under an open connection (a wiped or replaced device; a handoff removed):
            # the connection would go on serving the unlinked file.
            self.drop(path)
            broker = None
        if broker is not None:
            self._open.move_to_end(path)
            return broker
        broker = self.factory(path)
        self._open[path] = broker
        while len(self._open) > self.size:
            gone, old = self._open.popitem(last=False)
            self._checkpointed.pop(gone, None)
            old.close()
        return broker

    def drop(self, path: Path) -> None:
        broker = self._open.pop(path, None)
        self._checkpointed.pop(path, None)
        if broker is not None:
            broker.close()

    def checkpoint(self, min_wal_bytes: int = 1024 * 1024) -> int:
        """Fold the big WALs back into their databases (blocking: run it in a thread). A connection of its own
        and a passive checkpoint: the event loop's writers are never waited for, nor wait."""
        done = 0
        for path in list(self._open):
            wal = path.with_name(path.name + "-wal")
            try:
                st = wal.stat()
            except FileNotFoundError:
                continue
            # Not grown, or not written since its last checkpoint: nothing to fold back.
            if st.st_size < min_wal_bytes or self._checkpointed.get(path) == st.st_mtime_ns:
                continue
            self._checkpointed[path] = st.st_mtime_ns
            conn = sqlite3.connect(path, timeout=1)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                done += 1
            except sqlite3.OperationalError:
                pass  # busy now; the next pass gets it
            finally:
                conn.close()
        return done

    def close(self) -> None:
        for broker in self._open.values():
            broker.close()
        self._open.clear()


def remove_db(path: Path) -> None:
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name.exists():
            os.unlink(name)
