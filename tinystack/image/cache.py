"""The image cache of this API node: whole copies of image data in a local directory, so downloads of images
kept in a remote store (swift) are served from disk after the first one. Glance's cache API (``/v2/cache``)
lists, queues (prefetches) and drops entries.

Layout of ``[image] image_cache_dir``: ``<image_id>`` complete copies; ``incomplete/`` copies being written
(renamed into place only once their size and MD5 match the image's); ``cache.db`` (SQLite) the entries with
their hits and times, and the queue of images to prefetch. After each new entry the least recently used
entries go until the total is at most ``image_cache_max_size``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cached (image_id TEXT PRIMARY KEY, size INTEGER NOT NULL, checksum TEXT NOT NULL,
                                   hits INTEGER NOT NULL DEFAULT 0, last_accessed REAL NOT NULL,
                                   last_modified REAL NOT NULL);
CREATE TABLE IF NOT EXISTS queued (image_id TEXT PRIMARY KEY, queued_at REAL NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    image_id: str
    size: int
    hits: int
    last_accessed: float
    last_modified: float

    def view(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "hits": self.hits, "last_accessed": self.last_accessed,
                "last_modified": self.last_modified, "size": self.size}


class Fill:
    """One copy being written into the cache; ``finish`` installs it if it is the image's whole data."""

    def __init__(self, cache: ImageCache, image_id: str) -> None:
        self._cache = cache
        self.image_id = image_id
        self._path = cache.directory / "incomplete" / f"{image_id}.{uuid.uuid4().hex[:12]}"
        self._file = open(self._path, "wb")  # noqa: SIM115 - closed by finish or abort
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0
        self._broken = False

    def _add(self, chunk: bytes) -> None:
        if self._broken:
            return
        try:
            self._file.write(chunk)
        except OSError as exc:
            # A full or failing cache disk costs the copy, never the download feeding it.
            log.warning("image cache: cannot write %s: %s", self.image_id, exc)
            self._broken = True
            self.abort()
            return
        self._md5.update(chunk)
        self._size += len(chunk)

    async def add(self, chunk: bytes) -> None:
        await asyncio.to_thread(self._add, chunk)

    async def finish(self, size: int, checksum: str) -> bool:
        """Install the copy when it matches ``size`` and ``checksum``; else drop it. True when installed."""
        if self._broken:
            return False
        self._file.close()
        if self._size != size or self._md5.hexdigest() != checksum:
            log.warning("image cache: copy of %s does not match the image (%d bytes), dropped", self.image_id,
                        self._size)
            self._path.unlink(missing_ok=True)
            return False
        try:
            await asyncio.to_thread(self._cache.install, self.image_id, self._path, size, checksum)
        except (OSError, sqlite3.Error) as exc:
            log.warning("image cache: cannot install %s: %s", self.image_id, exc)
            self._path.unlink(missing_ok=True)
            return False
        return True

    def abort(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class ImageCache:
    def __init__(self, directory: Path, max_size: int) -> None:
        self.directory = directory
        self.max_size = max_size
        (directory / "incomplete").mkdir(parents=True, exist_ok=True)
        # Copies left by a process that stopped mid-write are never complete.
        for leftover in (directory / "incomplete").iterdir():
            leftover.unlink(missing_ok=True)
        db = sqlite3.connect(directory / "cache.db", timeout=30)
        try:
            db.executescript(_SCHEMA)  # commits on its own
        finally:
            db.close()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # Short transactions from worker threads; several API processes of one node may share the directory.
        db = sqlite3.connect(self.directory / "cache.db", timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _file(self, image_id: str) -> Path:
        if not image_id or "/" in image_id or image_id.startswith("."):
            raise ValueError(f"invalid image id {image_id!r}")
        return self.directory / image_id

    # --- reading and filling --------------------------------------------------------------------

    def lookup(self, image_id: str, checksum: str) -> Path | None:
        """The cached copy of the image (counted as a hit), or None."""
        with self._db() as db:
            row = db.execute("SELECT checksum FROM cached WHERE image_id = ?", (image_id,)).fetchone()
            path = self._file(image_id)
            if row is None or row[0] != checksum or not path.exists():
                return None
            db.execute("UPDATE cached SET hits = hits + 1, last_accessed = ? WHERE image_id = ?",
                       (time.time(), image_id))
        return path

    def begin(self, image_id: str) -> Fill:
        self._file(image_id)
        return Fill(self, image_id)

    def install(self, image_id: str, partial: Path, size: int, checksum: str) -> None:
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.rename(partial, self._file(image_id))
        now = time.time()
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO cached (image_id, size, checksum, hits, last_accessed, last_modified)"
                       " VALUES (?, ?, ?, 0, ?, ?)", (image_id, size, checksum, now, now))
            db.execute("DELETE FROM queued WHERE image_id = ?", (image_id,))
        log.info("image cache: %s cached (%d bytes)", image_id, size)
        self.prune()

    async def fill(self, image_id: str, size: int, checksum: str, source: AsyncIterator[bytes]) -> bool:
        """Copy ``source`` (the image's whole data) into the cache."""
        fill = await asyncio.to_thread(self.begin, image_id)
        try:
            async for chunk in source:
                await fill.add(chunk)
        except BaseException:
            fill.abort()
            raise
        return await fill.finish(size, checksum)

    # --- the cache API --------------------------------------------------------------------------

    def cached(self) -> list[Entry]:
        with self._db() as db:
            rows = db.execute("SELECT image_id, size, hits, last_accessed, last_modified FROM cached "
                              "ORDER BY last_modified").fetchall()
        return [Entry(*row) for row in rows]

    def queued(self) -> list[str]:
        with self._db() as db:
            return [row[0] for row in db.execute("SELECT image_id FROM queued ORDER BY queued_at")]

    def is_known(self, image_id: str) -> bool:
        with self._db() as db:
            return any(db.execute(f"SELECT 1 FROM {table} WHERE image_id = ?", (image_id,)).fetchone()
                       for table in ("cached", "queued"))

    def is_cached(self, image_id: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM cached WHERE image_id = ?", (image_id,)).fetchone() is not None

    def queue(self, image_id: str) -> None:
        self._file(image_id)
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO queued (image_id, queued_at) VALUES (?, ?)", (image_id, time.time()))

    def dequeue(self, image_id: str) -> bool:
        with self._db() as db:
            return db.execute("DELETE FROM queued WHERE image_id = ?", (image_id,)).rowcount > 0

    def evict(self, image_id: str) -> bool:
        """Drop the cached copy; True when there was one."""
        with self._db() as db:
            gone = db.execute("DELETE FROM cached WHERE image_id = ?", (image_id,)).rowcount > 0
        self._file(image_id).unlink(missing_ok=True)
        return gone

    def clear_cached(self) -> int:
        with self._db() as db:
            ids = [row[0] for row in db.execute("SELECT image_id FROM cached")]
            db.execute("DELETE FROM cached")
        for image_id in ids:
            self._file(image_id).unlink(missing_ok=True)
        return len(ids)

    def clear_queued(self) -> int:
        with self._db() as db:
            return int(db.execute("DELETE FROM queued").rowcount)

    def prune(self) -> tuple[int, int]:
        """Remove least recently used entries until the cache holds at most ``max_size`` bytes."""
        with self._db() as db:
            rows = db.execute("SELECT image_id, size FROM cached ORDER BY last_accessed DESC").fetchall()
            total, doomed = 0, []
            for image_id, size in rows:
                total += size
                if total > self.max_size:
                    doomed.append((image_id, size))
            db.executemany("DELETE FROM cached WHERE image_id = ?", [(i,) for i, _ in doomed])
        for image_id, _ in doomed:
            self._file(image_id).unlink(missing_ok=True)
            log.info("image cache: %s pruned (least recently used)", image_id)
        return len(doomed), sum(size for _, size in doomed)


class Prefetcher:
    """Caches queued images one at a time, in the order they were queued; now and then drops the copies of
    images that no longer have data (deleted through another node, say). Every API process runs one."""

    TIDY_EVERY = 300.0

    def __init__(self, cache: ImageCache, source: Callable[[str], Any], live: Callable[[], set[str]]) -> None:
        self.cache = cache
        # image id -> (size, checksum, data iterator factory), or None when the image has no active data.
        self._source = source
        self._live = live  # the ids of images with data (active or deactivated)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.TIDY_EVERY)
            except TimeoutError:
                await self.tidy()
                continue
            self._wake.clear()
            for image_id in await asyncio.to_thread(self.cache.queued):
                await self.prefetch(image_id)

    async def tidy(self) -> int:
        """Drop cached copies of images that are gone; how many went."""
        cached = await asyncio.to_thread(self.cache.cached)
        if not cached:
            return 0
        live = await asyncio.to_thread(self._live)
        gone = [e.image_id for e in cached if e.image_id not in live]
        for image_id in gone:
            log.info("image cache: dropping %s, no longer an image with data", image_id)
            await asyncio.to_thread(self.cache.evict, image_id)
        return len(gone)

    async def prefetch(self, image_id: str) -> None:
        found = await asyncio.to_thread(self._source, image_id)
        if found is None:
            log.info("image cache: %s has no active data any more, unqueued", image_id)
            await asyncio.to_thread(self.cache.dequeue, image_id)
            return
        size, checksum, read = found
        try:
            if not await self.cache.fill(image_id, size, checksum, read()):
                await asyncio.to_thread(self.cache.dequeue, image_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failed: the image stays queued for the next wake-up
            log.warning("image cache: prefetching %s failed: %s", image_id, exc)
