"""The SQLite databases of the account and container servers: one file per account or container, hash-named under
its device as in Swift, in WAL mode; metadata is a JSON map of name -> [value, timestamp] merged newest-wins."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinystack.object.common import suffix_of

WAL_LIMIT = 1024 * 1024


def db_path(device_root: Path, kind: str, partition: int, name_hash: str) -> Path:
    """``<device>/<kind>s/<partition>/<suffix>/<hash>/<hash>.db`` (kind: account or container)."""
    return device_root / f"{kind}s" / str(partition) / suffix_of(name_hash) / name_hash / f"{name_hash}.db"


class Broker:
    """One database file. Subclasses give the schema; the connection stays open (see ``BrokerCache``)."""

    SCHEMA = ""

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
            self._conn = conn
        return self._conn

    def create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as c:
            for statement in filter(None, (s.strip() for s in self.SCHEMA.split(";"))):
                c.execute(statement)

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
