"""What the object replicator compares: per partition, one md5 per suffix dir over the file names (which carry
the timestamps) of every object in it, and per suffix the newest timestamps of each object; per partition one
digest over its suffix hashes, which a peer answers for all its partitions of a device in one request. Kept in
memory per partition dir and rehashed only for the suffixes this process changed since (``diskfile.note_change``:
writes, tombstones, pushes, quarantines) and those holding a tombstone due for reclaim; a partition dir that is
gone or was made anew (a wiped device) is hashed whole. The last result is kept in ``hashes.json`` for recon.

Reclaim (Swift's ``reclaim_age``): while a suffix is hashed, a tombstone older than the reclaim age is removed
with its object's dir, so deletes leave nothing behind once every replica had time to learn of them. Files a newer
one made obsolete are removed there too (a write removes them itself, but not those an older write racing it
renamed in after it looked)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tinystack.object.servers import diskfile


def partition_dir(device_root: Path, partition: int, datadir: str = "objects") -> Path:
    return device_root / datadir / str(partition)


def _reclaim_before(reclaim_age: float | None) -> float | None:
    return None if reclaim_age is None else time.time() - reclaim_age


def _names(directory: Path, reclaim_before: float | None) -> tuple[list[str], float | None]:
    """The object's files that count, and the timestamp of its tombstone when that is what it holds. A tombstone
    older than ``reclaim_before`` is removed (with the object's dir once empty) and counts as nothing."""
    state = diskfile.scan(directory)
    tombstone = float(state.timestamp) if state.tombstone is not None else None
    if tombstone is not None and reclaim_before is not None and tombstone < reclaim_before:
        for victim in (state.tombstone, *(p for p in (state.meta, *state.others) if p is not None)):
            for path in (str(victim), f"{victim}.json"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # only when empty: a write landing meanwhile keeps its dir
        return [], None
    if state.others:
        diskfile.remove_files(state.others, state.sidecars)
    return sorted(p.name for p in (state.data, state.tombstone, state.meta) if p is not None), tombstone


def suffix_hash(suffix_dir: Path, reclaim_before: float | None = None) -> tuple[str | None, float | None]:
    """The suffix's hash (None for a suffix with no object left in it) and its oldest tombstone's timestamp."""
    md5 = hashlib.md5(usedforsecurity=False)
    found = False
    oldest: float | None = None
    try:
        hashes = sorted(os.listdir(suffix_dir))
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    for name_hash in hashes:
        names, tombstone = _names(suffix_dir / name_hash, reclaim_before)
        if names:
            found = True
            md5.update(name_hash.encode())
            for name in names:
                md5.update(name.encode())
        if tombstone is not None and (oldest is None or tombstone < oldest):
            oldest = tombstone
    return (md5.hexdigest() if found else None), oldest


def digest(suffixes: dict[str, str]) -> str:
    """One md5 over a partition's suffix hashes: equal on two replicas exactly when every suffix hash is."""
    md5 = hashlib.md5(usedforsecurity=False)
    for suffix in sorted(suffixes):
        md5.update(f"{suffix}{suffixes[suffix]}".encode())
    return md5.hexdigest()


@dataclass
class _Entry:
    stat: tuple[int, int, int]  # the partition dir's device, inode and mtime when hashed
    hashes: dict[str, str]
    digest: str
    tombstones: dict[str, float] = field(default_factory=dict)  # suffix -> its oldest tombstone's timestamp


# Partition dir -> its entry. The mtime changes when a suffix dir comes or goes, and a partition dir made anew
# (a wiped device) has a new one even where the inode number is reused.
_cache: dict[str, _Entry] = {}
_cache_lock = threading.Lock()  # one partition hashed at a time: a result is never stored over a newer one
CACHE_SIZE = 65536  # partition dirs whose hashes are kept


def _hashed(device_root: Path, partition: int, datadir: str, reclaim_age: float | None) -> _Entry | None:
    """Blocking. The partition's entry, rehashed where it changed; None when the partition dir is gone."""
    base = partition_dir(device_root, partition, datadir)
    key = str(base)
    before = _reclaim_before(reclaim_age)
    with _cache_lock:
        try:
            st = os.stat(base)
        except FileNotFoundError:
            _cache.pop(key, None)
            diskfile.take_changes(base)
            return None
        changed = diskfile.take_changes(base)  # before hashing: a change made meanwhile stays for the next ask
        cached = _cache.get(key)
        if cached is not None and cached.stat == (st.st_dev, st.st_ino, st.st_mtime_ns):
            if before is not None:
                changed |= {s for s, ts in cached.tombstones.items() if ts < before}
            if not changed:
                return cached
            out, tombstones = dict(cached.hashes), dict(cached.tombstones)
            suffixes = sorted(changed)
        else:
            out, tombstones = {}, {}
            try:
                suffixes = sorted(s for s in os.listdir(base) if len(s) == 3)
            except FileNotFoundError:
                suffixes = []
        for suffix in suffixes:
            value, oldest = suffix_hash(base / suffix, before)
            out.pop(suffix, None)
            tombstones.pop(suffix, None)
            if value is not None:
                out[suffix] = value
            if oldest is not None:
                tombstones[suffix] = oldest
        entry = _Entry((st.st_dev, st.st_ino, st.st_mtime_ns), out, digest(out), tombstones)
        # Best effort: the partition may be removed meanwhile (a handoff gone home, a wiped device).
        with contextlib.suppress(OSError):
            tmp = base / f"hashes.json.{os.getpid()}.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(out))
            os.replace(tmp, base / "hashes.json")
            # Its own hashes.json (and a reclaimed suffix) changed the dir's mtime: keep the dir as it is now.
            st = os.stat(base)
            entry.stat = (st.st_dev, st.st_ino, st.st_mtime_ns)
            if len(_cache) >= CACHE_SIZE:
                _cache.clear()
            _cache[key] = entry
        return entry


def suffix_hashes(device_root: Path, partition: int, datadir: str = "objects",
                  reclaim_age: float | None = None) -> dict[str, str]:
    """Blocking. Every non-empty suffix of the partition with its hash; written to ``hashes.json`` too when it
    was computed anew. With ``reclaim_age`` (seconds), tombstones older than that are removed on the way."""
    entry = _hashed(device_root, partition, datadir, reclaim_age)
    return {} if entry is None else dict(entry.hashes)


def partitions(device_root: Path, datadir: str = "objects") -> list[int]:
    """Blocking. The partitions a device holds of a policy's ``datadir``."""
    try:
        return sorted(int(p) for p in os.listdir(device_root / datadir) if p.isdigit())
    except FileNotFoundError:
        return []


def device_digests(device_root: Path, datadir: str = "objects", reclaim_age: float | None = None) -> dict[int, str]:
    """Blocking. ``{partition: digest}`` of every partition of the device (what a peer's replicator compares)."""
    out: dict[int, str] = {}
    for partition in partitions(device_root, datadir):
        entry = _hashed(device_root, partition, datadir, reclaim_age)
        if entry is not None:
            out[partition] = entry.digest
    return out


def suffix_listing(device_root: Path, partition: int, suffixes: list[str], datadir: str = "objects",
                   reclaim_age: float | None = None) -> dict[str, list[str]]:
    """Blocking. ``{hash: [file names]}`` of the objects in ``suffixes`` (newest .data/.ts and a newer .meta); a
    tombstone due for reclaim is removed rather than listed."""
    base = partition_dir(device_root, partition, datadir)
    before = _reclaim_before(reclaim_age)
    out: dict[str, list[str]] = {}
    for suffix in suffixes:
        try:
            hashes = os.listdir(base / suffix)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name_hash in hashes:
            directory = base / suffix / name_hash
            names, _ = _names(directory, before)
            if names:
                out[name_hash] = names
            elif before is not None and not directory.exists():
                diskfile.note_change(directory)  # reclaimed here: the suffix is rehashed at the next ask
    return out
