"""What the object replicator compares: per partition, one md5 per suffix dir over the file names (which carry
the timestamps) of every object in it, and per suffix the newest timestamps of each object. Recomputed on each
ask, so a quarantine or a wiped device is seen at once; the last result is kept in ``hashes.json`` for recon."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
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


def suffix_hashes(device_root: Path, partition: int, datadir: str = "objects") -> dict[str, str]:
    """Blocking. Every non-empty suffix of the partition with its hash; written to ``hashes.json`` too."""
    base = partition_dir(device_root, partition, datadir)
    out: dict[str, str] = {}
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
