"""Objects on a device, as Swift lays them out: ``objects/<partition>/<suffix>/<hash>/<timestamp>.data`` (or
``.ts`` for a tombstone, ``.meta`` for a newer POST), metadata in an xattr or, where the file system has none, a
``<file>.json`` sidecar. Files are written to the device's tmp dir, fsynced, then renamed into place."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import itertools
import json
import os
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinystack.object.common import suffix_of
from tinystack.object.local import SharedDigest

XATTR = "user.tinystack.meta"
FLUSH_EVERY = 8 * 1024 * 1024  # bytes of a large object written between two starts of its write-back
IOV_MAX = 1024  # pieces in one writev (Linux's limit)

# Suffixes whose objects changed, by partition dir, since hashes.py last hashed them: the replicator then
# rehashes those alone instead of every object of the partition on every pass (Swift's hashes.invalid).
_changed: dict[str, set[str]] = {}
_changed_lock = threading.Lock()


def note_change(directory: Path) -> None:
    """An object's hash dir gained or lost a file (or went away)."""
    suffix = directory.parent
    with _changed_lock:
        _changed.setdefault(str(suffix.parent), set()).add(suffix.name)


def take_changes(partition_dir: Path) -> set[str]:
    with _changed_lock:
        return _changed.pop(str(partition_dir), set())


def object_dir(device_root: Path, partition: int, name_hash: str, datadir: str = "objects") -> Path:
    """``datadir``: the storage policy's directory (``objects``, ``objects-<n>``)."""
    return device_root / datadir / str(partition) / suffix_of(name_hash) / name_hash


def _set_meta(path: str, fd: int | None, meta: dict[str, Any]) -> bool:
    """True when the metadata went to a ``.json`` sidecar (no xattr here)."""
    blob = json.dumps(meta, separators=(",", ":")).encode()
    try:
        os.setxattr(fd if fd is not None else path, XATTR, blob)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.E2BIG, errno.ENOSPC):
            raise
        with open(path + ".json", "wb") as f:
            f.write(blob)
        return True
    return False


def read_meta(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(os.getxattr(path, XATTR)))
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    return dict(json.loads(Path(str(path) + ".json").read_bytes()))


_NOWAIT = getattr(os, "RWF_NOWAIT", None)


def read_cached(path: Path, size: int) -> bytes | None:
    """The file's ``size`` bytes when all of them are in the page cache, else None, without waiting for the disk
    (``preadv`` with ``RWF_NOWAIT``): a small read the event loop may do itself instead of a trip to a thread.
    None too where the kernel or file system cannot read that way; OSError when the file is gone."""
    if _NOWAIT is None:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if size == 0:
            return b""
        buf = bytearray(size)
        try:
            got = os.preadv(fd, [buf], 0, _NOWAIT)
        except BlockingIOError:  # EAGAIN: some of it would come from the disk
            return None
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return None
            raise
    finally:
        os.close(fd)
    return bytes(buf) if got == size else None


@dataclass
class State:
    """What a hash dir holds: the newest .data or .ts, and a .meta newer than it. ``found``: the dir was there;
    ``sidecars``: the names of its ``.json`` metadata files."""

    data: Path | None = None
    tombstone: Path | None = None
    meta: Path | None = None
    timestamp: str = ""  # of the newest .data or .ts
    others: list[Path] = field(default_factory=list)
    found: bool = False
    sidecars: frozenset[str] = frozenset()


def scan(directory: Path) -> State:
    try:
        names = sorted(os.listdir(directory), reverse=True)
    except FileNotFoundError:
        return State()
    state = State(found=True)
    sidecars = [name for name in names if name.endswith(".json")]
    if sidecars:
        state.sidecars = frozenset(sidecars)
    for name in names:
        stem, _, ext = name.rpartition(".")
        if ext == "json" or not stem:
            continue
        path = directory / name
        if ext == "meta" and not state.timestamp:
            if state.meta is None:
                state.meta = path
                continue
        elif ext in ("data", "ts") and not state.timestamp:
            state.timestamp = stem
            if ext == "data":
                state.data = path
            else:
                state.tombstone = path
            continue
        state.others.append(path)
    if state.meta is not None and state.meta.name.rpartition(".")[0] <= state.timestamp:
        state.others.append(state.meta)
        state.meta = None
    return state


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_files(paths: list[Path], sidecars: frozenset[str] | None = None) -> None:
    """The files and their ``.json`` sidecars: those named in ``sidecars`` when the caller listed them (no
    unlink of a sidecar that is not there, the usual case), else any that may be there."""
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)
        if sidecars is None or p.name + ".json" in sidecars:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{p}.json")


def _make_dir(directory: Path) -> bool:
    """The object's hash dir, made with its missing parents; True when this call made it (so no other file of
    the object can be in it but those written after this), False when it was there."""
    try:
        os.mkdir(directory)
    except FileNotFoundError:
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(directory)
        except FileExistsError:
            return False
    except FileExistsError:
        return False
    return True


def _libc_sync_file_range() -> Any:
    """libc's ``sync_file_range`` (Linux; Python's os has none): ctypes lets go of the GIL around the call."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _libc_sync_file_range() if sys.platform == "linux" else None
_SYNC_FILE_RANGE_WRITE = 2  # start write-back of the dirty pages, do not wait


_tmp_names = itertools.count()
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _new_tmp(tmp: str) -> tuple[int, str]:
    """A new file in the device's tmp dir, named by this process and a counter (what mkstemp's random names
    cost shows on every small write); a name left by an earlier process of the same pid is skipped."""
    while True:
        path = f"{tmp}/{os.getpid()}.{next(_tmp_names)}.tmp"
        try:
            return os.open(path, _TMP_FLAGS, 0o600), path
        except FileExistsError:
            continue


class Writer:
    """One new file being written: chunks go to a temporary file, ``commit`` makes it the object's newest."""

    def __init__(self, device_root: Path, directory: Path, fsync: bool, digest: SharedDigest | None = None) -> None:
        """``digest``: the body's MD5 shared with the other writers of the same body in this process (else the
        writer hashes what it writes itself)."""
        tmp = device_root / "tmp"
        try:
            self.fd, self.tmp_path = _new_tmp(str(tmp))
        except FileNotFoundError:  # the first write to the device, or a wiped one: tmp is made once, not per file
            tmp.mkdir(exist_ok=True)  # not its parents: a device taken away meanwhile must not come back empty
            self.fd, self.tmp_path = _new_tmp(str(tmp))
        self.directory = directory
        self.fsync = fsync
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.digest = digest
        self.size = 0
        self._flushed = 0
        self._sidecar = False
        self._placed: tuple[str, State | None, bool] | None = None

    def etag(self) -> str:
        """The MD5 of everything written."""
        return self.digest.hexdigest(self.size) if self.digest is not None else self.md5.hexdigest()

    def write(self, chunk: bytes) -> None:
        if self.digest is not None:
            self.digest.catch_up([chunk], self.size + len(chunk))
        else:
            self.md5.update(chunk)
        self.size += len(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view):]
        self._flush_some()

    def write_many(self, chunks: list[bytes]) -> None:
        """The pieces in order, gathered by the kernel (one system call, no joined copy of them here)."""
        for start in range(0, len(chunks), IOV_MAX):
            group = chunks[start:start + IOV_MAX]
            total = sum(len(c) for c in group)
            if self.digest is not None:
                self.digest.catch_up(group, self.size + total)
            else:
                for chunk in group:
                    self.md5.update(chunk)
            done = os.writev(self.fd, group)
            self.size += total
            if done < total:  # cut short (a signal, a full disk): the rest one piece at a time
                rest = memoryview(b"".join(group))[done:]
                while rest:
                    rest = rest[os.write(self.fd, rest):]
        self._flush_some()

    def _flush_some(self) -> None:
        if self.fsync and self.size - self._flushed >= FLUSH_EVERY:
            # Start writing what is written so far to the disk now, without waiting (Swift's mb_per_sync):
            # the fsync at the commit then has little left, instead of a whole large object at once.
            os.posix_fadvise(self.fd, self._flushed, self.size - self._flushed, os.POSIX_FADV_DONTNEED)
            self._flushed = self.size

    def commit(self, filename: str, meta: dict[str, Any], before: State | None = None) -> None:
        """Blocking (fsyncs): run in a thread. Leaves older files of the object removed. ``before``: the hash dir
        as the caller scanned it ahead of this write, in the same trip to a thread: the dir is then made only when
        it was not there, and the files it held that are older than this one are removed without reading the
        dir again (a small write's system calls are what it costs, each a wait for the GIL). Without it, or when
        another writer made the dir meanwhile, the dir is read again after the rename, as before. An older
        file a concurrent writer adds meanwhile is left to the replicator's hash pass (hashes.py)."""
        self.seal(meta)
        self.sync()
        self.place(filename, before)

    def seal(self, meta: dict[str, Any]) -> None:
        """The metadata on the file: nothing more is written to it."""
        try:
            self._sidecar = _set_meta(self.tmp_path, self.fd, meta)
        except BaseException:
            self._close()
            raise

    def start_sync(self) -> None:
        """Start writing the file's pages to the disk without waiting (``sync_file_range``), so that the first
        fsync of several files written together commits one journal transaction that holds them all (ext4's
        delayed allocation gives a file its blocks only at write-back: a file not yet written back would need a
        transaction of its own at its fsync). Nothing where the call is missing."""
        if self.fsync and _sync_file_range is not None:
            _sync_file_range(self.fd, 0, 0, _SYNC_FILE_RANGE_WRITE)

    def sync(self) -> None:
        """The file on the disk (when the node fsyncs) and closed."""
        try:
            if self.fsync:
                os.fsync(self.fd)
        finally:
            self._close()

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def place(self, filename: str, before: State | None = None, sync_dir: bool = True) -> None:
        """The sealed, synced file renamed into the hash dir as ``filename``; then the dir fsynced (unless
        ``sync_dir`` is False: the caller does it, ``sync_dir``) and the older files removed (``commit``)."""
        made = False
        if before is None or not before.found:
            made = _make_dir(self.directory)
        target = self.directory / filename
        try:
            self._place(target, self._sidecar)
        except FileNotFoundError:  # the dir went away since it was scanned (an emptied one reclaimed): again
            made = _make_dir(self.directory)
            self._place(target, self._sidecar)
        self._placed = (filename, before, made)
        if sync_dir:
            self.sync_dir()

    def sync_dir(self) -> None:
        """After ``place``: the hash dir fsynced (when the node fsyncs), then the object's older files removed."""
        assert self._placed is not None, "sync_dir before place"
        filename, before, made = self._placed
        if self.fsync:
            _fsync_dir(self.directory)
        if before is not None and before.found and not made:
            stamp = filename.rpartition(".")[0]
            remove_files([p for p in (before.data, before.tombstone, before.meta, *before.others)
                     if p is not None and p.name.rpartition(".")[0] < stamp], before.sidecars)
        elif before is None or not made:
            state = scan(self.directory)
            remove_files(state.others, state.sidecars)
        note_change(self.directory)

    def _place(self, target: Path, sidecar: bool) -> None:
        if sidecar:
            os.replace(self.tmp_path + ".json", f"{target}.json")
        os.replace(self.tmp_path, target)

    def abort(self) -> None:
        """The file closed and removed, when it was not placed yet."""
        self._close()
        if self._placed is not None:
            return
        remove_files([Path(self.tmp_path)])


async def write_body(writer: Writer, chunks: AsyncIterator[bytes]) -> None:
    async for chunk in chunks:
        writer.write(chunk)


def write_empty(device_root: Path, directory: Path, filename: str, meta: dict[str, Any], fsync: bool,
                before: State | None = None) -> None:
    """A tombstone or .meta file (blocking); ``before`` as for ``Writer.commit``."""
    writer = Writer(device_root, directory, fsync)
    try:
        writer.commit(filename, meta, before)
    except BaseException:
        writer.abort()
        raise
