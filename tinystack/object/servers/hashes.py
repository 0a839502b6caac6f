"""What the object replicator compares: per partition, one md5 per suffix dir over the file names (which carry
the timestamps) of every object in it, and per suffix the newest timestamps of each object. Kept in memory per
partition dir and rehashed only for the suffixes this process changed since (``diskfile.note_change``: writes,
tombstones, pushes, quarantines); a partition dir that is gone or was made anew (a wiped device) is hashed
whole. The last result is kept in ``hashes.json`` for recon."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import uuid
from pathlib import Path

from tinystack.object.servers import diskfile


def partition_dir(device_root: Path, partition: int, datadir: str = "objects") -> Path:
    return device_root / datadir / str(partition)


def _names(directory: Path) -> list[str]:
    state = diskfile.scan(directory)
    return sorted(p.name for p in (state.data, state.tombstone, state.meta) if p is not None)


def suffix_hash(suffix_dir: Path) -> str | None:
    """None for a suffix with no object left in it."""
    md5 = hashlib.md5(usedforsecurity=False)
    found = False
    try:
        hashes = sorted(os.listdir(suffix_dir))
    except FileNotFoundError:
        return None
    for name_hash in hashes:
        names = _names(suffix_dir / name_hash)
        if names:
            found = True
            md5.update(name_hash.encode())
            for name in names:
                md5.update(name.encode())
    return md5.hexdigest() if found else None


# Partition dir -> (its device, inode and mtime, its hashes). The mtime changes when a suffix dir comes or goes,
# and a partition dir made anew (a wiped device) has a new one even where the inode number is reused.
_cache: dict[str, tuple[tuple[int, int, int], dict[str, str]]] = {}
_cache_lock = threading.Lock()  # one partition hashed at a time: a result is never stored over a newer one
CACHE_SIZE = 65536  # partition dirs whose hashes are kept


def suffix_hashes(device_root: Path, partition: int, datadir: str = "objects") -> dict[str, str]:
    """Blocking. Every non-empty suffix of the partition with its hash; written to ``hashes.json`` too when it
    was computed anew."""
    base = partition_dir(device_root, partition, datadir)
    key = str(base)
    with _cache_lock:
        try:
            st = os.stat(base)
        except FileNotFoundError:
            _cache.pop(key, None)
            diskfile.take_changes(base)
            return {}
        changed = diskfile.take_changes(base)  # before hashing: a change made meanwhile stays for the next ask
        cached = _cache.get(key)
        if cached is not None and cached[0] == (st.st_dev, st.st_ino, st.st_mtime_ns):
            if not changed:
                return dict(cached[1])
            out = dict(cached[1])
            for suffix in changed:
                value = suffix_hash(base / suffix)
                if value is None:
                    out.pop(suffix, None)
                else:
                    out[suffix] = value
        else:
            out = {}
            with contextlib.suppress(FileNotFoundError):
                for suffix in sorted(os.listdir(base)):
                    if len(suffix) == 3:
                        value = suffix_hash(base / suffix)
                        if value is not None:
                            out[suffix] = value
        # Best effort: the partition may be removed meanwhile (a handoff gone home, a wiped device).
        with contextlib.suppress(OSError):
            tmp = base / f"hashes.json.{os.getpid()}.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(out))
            os.replace(tmp, base / "hashes.json")
            # Its own hashes.json changed the dir's mtime: what is kept is the dir as it is now.
            st = os.stat(base)
            if len(_cache) >= CACHE_SIZE:
                _cache.clear()
            _cache[key] = ((st.st_dev, st.st_ino, st.st_mtime_ns), dict(out))
        return out


def suffix_listing(device_root: Path, partition: int, suffixes: list[str],
                   datadir: str = "objects") -> dict[str, list[str]]:
    """Blocking. ``{hash: [file names]}`` of the objects in ``suffixes`` (newest .data/.ts and a newer .meta)."""
    base = partition_dir(device_root, partition, datadir)
    out: dict[str, list[str]] = {}
    for suffix in suffixes:
        try:
            hashes = os.listdir(base / suffix)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name_hash in hashes:
            names = _names(base / suffix / name_hash)
            if names:
                out[name_hash] = names
    return out
