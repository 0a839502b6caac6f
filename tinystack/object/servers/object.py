"""The object server: stores each replica as a file on one of its devices (diskfile.py), answers GET/HEAD with
ranges and conditions, applies the newest X-Timestamp (older writes get 409), and tells the container server of
each change, leaving an async pending on disk when it cannot."""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from tinystack.object import httprange
from tinystack.object.common import hash_path, parse_timestamp, status_error
from tinystack.object.local import SharedDigest, Streamed
from tinystack.object.servers import diskfile, writebatch
from tinystack.object.servers.base import BackendPath, Handler, NodeContext, build_app, parse_path, policy_datadir
from tinystack.object.servers.recon import with_recon
from tinystack.object.servers.replication import with_verbs
from tinystack.object.servers.updates import send_container_update

# Headers an object keeps from its PUT besides its X-Object-Meta-*.
KEPT = ("content-type", "content-encoding", "content-disposition", "content-language", "x-delete-at",
        "x-object-manifest", "x-static-large-object", "cache-control", "expires")
# The ones a POST may change (Content-Type too, as Swift's fast-POST allows).
POSTABLE = ("content-type", "content-encoding", "content-disposition", "content-language", "x-delete-at",
            "cache-control", "expires", "x-object-manifest")
SMALL = 1024 * 1024
BATCH = 1024 * 1024
SMALL_WRITE = 64 * 1024


def _meta_headers(headers: Any, names: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        low = key.lower()
        if low in names or low.startswith(("x-object-meta-", "x-object-sysmeta-", "x-object-transient-sysmeta-")):
            out[low] = value
    return out


async def _receive(node: NodeContext, request: web.Request, writer: diskfile.Writer) -> None:
    """The body into ``writer``. Large bodies are hashed and written a MiB at a time in a thread (hashlib lets go
    of the GIL), so the replicas of one upload, all in this process, use every core; a small one stays inline."""
    batch: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        batch.append(chunk)
        size += len(chunk)
        if size >= BATCH:
            await node.run(writer.write_many, batch)
            batch, size = [], 0
    if batch:
        if size >= SMALL_WRITE:
            await node.run(writer.write_many, batch)
        else:
            writer.write_many(batch)


def _require_device(root: Path) -> None:
    """Blocking: 507 when the device is not there (a device taken away is not made anew by a write). Done in the
    write's own trip to a thread: a stat on the event loop stalled it behind the I/O threads' renames and fsyncs."""
    if not os.path.isdir(str(root)):
        raise status_error(507, f"Device {root.name} is not mounted here")


def _writer(root: Path, directory: Path, fsync: bool, digest: SharedDigest | None = None) -> diskfile.Writer:
    """Blocking: a new file on the device; 507 when the device is not there. Looked at only when the file cannot
    be made (a missing device has no tmp dir, and the writer makes that dir alone, not its parents): a stat less
    on every write."""
    try:
        return diskfile.Writer(root, directory, fsync, digest)
    except FileNotFoundError:
        _require_device(root)
        raise


def _prepare_whole(root: Path, directory: Path, fsync: bool, body: bytes, ts: str, wanted: str,
                   meta: dict[str, Any]) -> writebatch.Prepared:
    """Blocking, the first step of a small write in a batch (``writebatch``): a small body already in memory,
    checked against what the object has and written to a new file, for the batch to sync and place (no
    directory read on the event loop, where a rename or mkdir in the same directory by another thread would stall
    it). Its answer: the object's metadata with its ETag and length, or None and the timestamp of a write at
    least as new (a 409)."""
    state = diskfile.scan(directory)
    if state.timestamp and state.timestamp >= ts:
        return None, "", None, (None, state.timestamp)
    writer = _writer(root, directory, fsync)
    try:
        writer.write(body)
        etag = writer.md5.hexdigest()
        if wanted and wanted != etag:
            raise status_error(422, "The ETag does not match the body's MD5")
        meta = {**meta, "etag": etag, "content-length": writer.size}
        writer.seal(meta)
    except BaseException:
        writer.abort()
        raise
    return writer, f"{ts}.data", state, (meta, "")


def _new_writer(root: Path, directory: Path, fsync: bool, ts: str,
                digest: SharedDigest | None) -> tuple[diskfile.Writer | None, str]:
    """Blocking: a writer for a large body, or None and the timestamp of a write at least as new (a 409)."""
    state = diskfile.scan(directory)
    if state.timestamp and state.timestamp >= ts:
        return None, state.timestamp
    return _writer(root, directory, fsync, digest), ""


class _FileParts:
    """The body of a GET from its open file: each range (after its multipart head), read a MiB at a time in the
    node's threads; the file is closed once read, or by ``close`` when the reader stops early."""

    def __init__(self, node: NodeContext, f: Any, parts: list[tuple[bytes, int, int]], tail: bytes) -> None:
        self.node, self.f, self.parts, self.tail = node, f, parts, tail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for head, start, end in self.parts:
                if head:
                    yield head
                self.f.seek(start)
                left = end - start
                while left > 0:
                    chunk = await self.node.run(self.f.read, min(left, 1024 * 1024))
                    if not chunk:
                        break
                    left -= len(chunk)
                    yield chunk
                if head:
                    yield b"\r\n"
            if self.tail:
                yield self.tail
        finally:
            self.close()

    def close(self) -> None:
        self.f.close()


HOT_SECONDS = 60.0  # how long a hash dir this server just wrote or read counts as cached
HOT_DIRS = 8192  # hash dirs remembered
INLINE_BODY = 64 * 1024  # largest body the event loop reads itself (from the page cache only)


class _HotDirs:
    """Hash dirs this server wrote or read a moment ago: their directory entries, inodes and metadata are in the
    kernel's caches, so a GET/HEAD of one looks at them on the event loop (and reads a small body there when the
    page cache has all of it) instead of taking a trip to a thread. Any other read goes to a thread as before,
    so a cold object never stalls the loop on the disk."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def touch(self, directory: Path) -> None:
        seen, key = self._seen, str(directory)
        seen.pop(key, None)  # to the end: the oldest goes first when full
        if len(seen) >= HOT_DIRS:
            del seen[next(iter(seen))]
        seen[key] = time.monotonic()

    def hot(self, directory: Path) -> bool:
        when = self._seen.get(str(directory))
        return when is not None and time.monotonic() - when < HOT_SECONDS


class ObjectServer:
    def __init__(self, node: NodeContext) -> None:
        self.node = node
        self.s = node.settings
        self._hot = _HotDirs()
        # Small writes of one object in one loop turn (a PUT's replicas on this node's devices): one thread trip.
        self._writes = writebatch.WriteBatcher(lambda: node.io)

    def handlers(self) -> dict[str, Handler]:
        """The server's handlers by method, for its HTTP app and for in-process requests alike."""
        return with_recon(self.node, with_verbs(self.node, {
            "PUT": self.put, "GET": self.get, "HEAD": self.get, "DELETE": self.delete, "POST": self.post}))

    def app(self) -> web.Application:
        return build_app(self.handlers())

    def _locate(self, request: web.Request, check_device: bool = True) -> tuple[BackendPath, Any, Any]:
        """The request's path, its device and the object's hash dir; ``check_device``: 507 now when the device is
        not there (a read looks only when it finds nothing: an object found is on a device that is there)."""
        p = parse_path(request, 5, 5)
        root = self.node.device_root(p.device) if check_device else self.node.device_path(p.device)
        name_hash = hash_path(self.s.hash_path_prefix, self.s.hash_path_suffix, p.account, p.container, p.obj)
        return p, root, diskfile.object_dir(root, p.partition, name_hash, policy_datadir(self.node, request))

    async def put(self, request: web.Request) -> web.StreamResponse:
        p, root, directory = self._locate(request, check_device=False)  # looked at in the write's thread trip
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        length = request.headers.get("Content-Length")
        if length is None and request.headers.get("Transfer-Encoding", "").lower() != "chunked":
            raise status_error(411, "Missing Content-Length")
        wanted = request.headers.get("ETag", "").strip('"').lower()
        meta: dict[str, Any] = {"name": f"/{p.account}/{p.container}/{p.obj}", "x-timestamp": ts,
                                **_meta_headers(request.headers, KEPT)}
        meta.setdefault("content-type", "application/octet-stream")
        stored: dict[str, Any] | None
        if length is not None and length.isdigit() and int(length) <= SMALL_WRITE:
            try:
                # aiohttp's reader of an empty body refuses even readexactly(0).
                body = await request.content.readexactly(int(length)) if int(length) else b""
            except asyncio.IncompleteReadError:
                raise status_error(499, "Client disconnected before sending the whole body") from None
            stored, newer = await self._writes.run(
                functools.partial(_prepare_whole, root, directory, self.s.fsync, body, ts, wanted, meta),
                directory.name)
        else:
            # A body fanned out to several servers of this process comes with its MD5 shared between them.
            digest = getattr(request.content, "digest", None)
            writer, newer = await self.node.run(_new_writer, root, directory, self.s.fsync, ts, digest)
            stored = None
            if writer is not None:
                try:
                    await _receive(self.node, request, writer)
                    if length is not None and writer.size != int(length):
                        raise status_error(499, "Client disconnected before sending the whole body")
                    etag = writer.etag()
                    if wanted and wanted != etag:
                        raise status_error(422, "The ETag does not match the body's MD5")
                    stored = {**meta, "etag": etag, "content-length": writer.size}
                    await self.node.run(writer.commit, f"{ts}.data", stored)
                except BaseException:
                    writer.abort()
                    raise
        if stored is None:
            return web.Response(status=409, headers={"X-Backend-Timestamp": newer})
        if int(stored["content-length"]) <= INLINE_BODY:
            self._hot.touch(directory)
        await self._update_container(request, root, p, "PUT", ts, stored)
        return web.Response(status=201, headers={"ETag": stored["etag"]})

    async def get(self, request: web.Request) -> web.StreamResponse:
        _p, root, directory = self._locate(request, check_device=False)
        whole = request.method == "GET" and "Range" not in request.headers
        loaded = self._load_cached(directory, whole) if self._hot.hot(directory) else None
        if loaded is None:
            loaded = await self.node.run(self._load, directory, whole, root)
            if loaded[0].data is not None and int(loaded[1]["content-length"]) <= INLINE_BODY:
                self._hot.touch(directory)
        state, meta, small_body = loaded
        if state.data is None:
            headers = {"X-Backend-Timestamp": state.timestamp} if state.timestamp else {}
            return web.Response(status=404, headers=headers)
        delete_at = meta.get("x-delete-at")
        if delete_at and int(delete_at) <= time.time():
            return web.Response(status=404, headers={"X-Backend-Timestamp": state.timestamp})
        etag, size = meta["etag"], int(meta["content-length"])
        headers = self._headers(meta, state)
        headers["X-Backend-Timestamp"] = state.timestamp
        conditional = httprange.check_conditions(request.headers, etag, state.timestamp, request.method)
        if conditional is not None:
            keep = {k: v for k, v in headers.items() if k in ("ETag", "Last-Modified", "X-Timestamp")}
            return web.Response(status=conditional, headers=keep)
        if request.method == "HEAD":
            headers["Content-Length"] = str(size)
            return web.Response(status=200, headers=headers)
        ranges = None
        if "Range" in request.headers and "x-object-manifest" not in meta:
            # A manifest's range is over its segments, which the proxy's dlo middleware serves.
            ranges = httprange.parse_ranges(request.headers.get("Range"), size)
        assert state.data is not None
        if ranges is None:
            if small_body is not None:
                return web.Response(status=200, body=small_body, headers=headers)
            return await self._stream(state.data, [(0, size)], headers, 200, size)
        return await self._stream(state.data, ranges, headers, 206, size)

    async def _stream(self, path: Any, ranges: list[tuple[int, int]], headers: dict[str, str], status: int,
                      size: int) -> web.StreamResponse:
        content_type = headers.pop("Content-Type")
        boundary = uuid.uuid4().hex
        parts: list[tuple[bytes, int, int]] = []
        if status == 206 and len(ranges) == 1:
            start, end = ranges[0]
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            headers["Content-Type"] = content_type
            parts.append((b"", start, end))
            total = end - start
        elif status == 206:
            headers["Content-Type"] = f"multipart/byteranges;boundary={boundary}"
            total = 0
            for start, end in ranges:
                head = (f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                        f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n").encode()
                parts.append((head, start, end))
                total += len(head) + end - start + 2
            total += len(f"--{boundary}--")
        else:
            headers["Content-Type"] = content_type
            parts.append((b"", 0, size))
            total = size
        headers["Content-Length"] = str(total)
        # Opened before the answer goes out: a file replaced meanwhile by a newer write is still read whole.
        f = await self.node.run(open, path, "rb")
        tail = f"--{boundary}--".encode() if len(parts) > 1 or parts[0][0] else b""
        return Streamed(status, headers, _FileParts(self.node, f, parts, tail))

    @classmethod
    def _load(cls, directory: Path, whole: bool, root: Path | None = None) -> tuple[diskfile.State, dict[str, Any],
                                                                                   bytes | None]:
        """Blocking, one trip to a thread for a GET or HEAD: what the hash dir holds, the object's metadata, and
        with ``whole`` its body when it is small (read with the metadata, so a small GET costs one trip). When
        nothing is found, 507 if the device ``root`` is not there at all (looked at here, only on a miss)."""
        state = diskfile.scan(directory)
        if state.data is None:
            if not state.timestamp and root is not None and not os.path.isdir(str(root)):
                raise status_error(507, f"Device {root.name} is not mounted here")
            return state, {}, None
        meta = cls._read_meta(state)
        body = None
        if whole and int(meta["content-length"]) <= SMALL:
            with open(state.data, "rb") as f:
                body = f.read()
            if len(body) != int(meta["content-length"]):
                body = None  # changed under us (replaced by a newer write): stream what the metadata says
        return state, meta, body

    @classmethod
    def _load_cached(cls, directory: Path, whole: bool) -> tuple[diskfile.State, dict[str, Any], bytes | None] | None:
        """``_load`` on the event loop, for a hash dir known to be in the kernel's caches: None (go to a thread)
        when it finds no object, its body is larger than INLINE_BODY or not all in the page cache, or a file went
        away meanwhile (replaced by a newer write)."""
        try:
            state = diskfile.scan(directory)
            if state.data is None:
                return None  # a miss: the thread looks at the device too
            meta = cls._read_meta(state)
            size = int(meta["content-length"])
            if not whole:
                return state, meta, None
            if size > INLINE_BODY:
                return None
            body = diskfile.read_cached(state.data, size)
        except OSError:
            return None
        return None if body is None else (state, meta, body)

    @staticmethod
    def _read_meta(state: diskfile.State) -> dict[str, Any]:
        assert state.data is not None
        meta = diskfile.read_meta(state.data)
        if state.meta is not None:
            newer = diskfile.read_meta(state.meta)
            # A POST replaces the user metadata and the postable headers, keeping the rest of the PUT's.
            meta = {k: v for k, v in meta.items()
                    if not (k.startswith(("x-object-meta-", "x-object-transient-sysmeta-")) or k in POSTABLE)
                    or (k == "content-type" and "content-type" not in newer)}
            meta.update(newer)
            meta["x-meta-timestamp"] = state.meta.name.rpartition(".")[0]
        return meta

    @staticmethod
    def _headers(meta: dict[str, Any], state: diskfile.State) -> dict[str, str]:
        out = {"Content-Type": meta["content-type"], "ETag": meta["etag"], "X-Timestamp": state.timestamp,
               "Last-Modified": httprange.http_date(meta.get("x-meta-timestamp", state.timestamp)),
               "Accept-Ranges": "bytes"}
        for key, value in meta.items():
            if (key in KEPT and key != "content-type") or key.startswith(("x-object-meta-", "x-object-sysmeta-",
                                                                          "x-object-transient-sysmeta-")):
                out["-".join(w.capitalize() for w in key.split("-"))] = str(value)
        return out

    async def post(self, request: web.Request) -> web.StreamResponse:
        p, root, directory = self._locate(request)
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        state = diskfile.scan(directory)
        if state.data is None:
            return web.Response(status=404, headers={"X-Backend-Timestamp": state.timestamp} if state.timestamp else {})
        if state.timestamp >= ts or (state.meta is not None and state.meta.name.rpartition(".")[0] >= ts):
            return web.Response(status=409, headers={"X-Backend-Timestamp": state.timestamp})
        old = await self.node.run(self._read_meta, state)
        if old.get("x-delete-at") and int(old["x-delete-at"]) <= time.time():
            return web.Response(status=404)
        meta = _meta_headers(request.headers, POSTABLE)
        # Sysmeta is kept from the PUT unless the POST sets it again.
        for key, value in old.items():
            if key.startswith("x-object-sysmeta-") and key not in meta:
                meta[key] = value
        await self.node.run(diskfile.write_empty, root, directory, f"{ts}.meta", meta, self.s.fsync)
        if "content-type" in meta and meta["content-type"] != old.get("content-type"):
            full = {**old, **meta}
            await self._update_container(request, root, p, "PUT", state.timestamp, full, force_ts=ts)
        return web.Response(status=202)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        p, root, directory = self._locate(request, check_device=False)  # looked at in _tombstone's thread trip
        ts = parse_timestamp(request.headers.get("X-Timestamp"))
        meta = {"name": f"/{p.account}/{p.container}/{p.obj}", "x-timestamp": ts}
        status, newer = await self._writes.run(functools.partial(
            self._tombstone, root, directory, ts, meta, request.headers.get("X-If-Delete-At"), self.s.fsync),
            directory.name)
        if status == 409:
            return web.Response(status=409, headers={"X-Backend-Timestamp": newer})
        await self._update_container(request, root, p, "DELETE", ts, meta)
        return web.Response(status=status)

    @classmethod
    def _tombstone(cls, root: Path, directory: Path, ts: str, meta: dict[str, Any], if_delete_at: str | None,
                   fsync: bool) -> writebatch.Prepared:
        """Blocking, the first step of a DELETE in a batch (``writebatch``): the checks, then the tombstone's
        file. Its answer: 204 (or 404 when there was nothing to delete), or 409 and the timestamp of a write at
        least as new."""
        state = diskfile.scan(directory)
        if state.timestamp and state.timestamp >= ts:
            return None, "", None, (409, state.timestamp)
        existed = state.data is not None
        if existed and if_delete_at and str(cls._read_meta(state).get("x-delete-at")) != if_delete_at:
            raise status_error(412, "X-If-Delete-At does not match")
        writer = _writer(root, directory, fsync)
        try:
            writer.seal(meta)
        except BaseException:
            writer.abort()
            raise
        return writer, f"{ts}.ts", state, ((204 if existed else 404), "")

    async def _update_container(self, request: web.Request, root: Any, p: BackendPath, op: str, ts: str,
                                meta: dict[str, Any], force_ts: str | None = None) -> None:
        host = request.headers.get("X-Container-Host")
        if not host:
            return
        headers = {"X-Timestamp": force_ts or ts}
        if op == "PUT":
            headers.update({"X-Size": str(meta["content-length"]), "X-Content-Type": meta["content-type"],
                            "X-Etag": meta["etag"]})
        target = (host, request.headers.get("X-Container-Device", ""), request.headers.get("X-Container-Partition", ""))
        await send_container_update(self.node, root, target, op, p.account, p.container or "", p.obj or "", headers)
