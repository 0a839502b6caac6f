"""The swift store: image data as objects in the cloud's own object storage (Glance's swift store shape).

Each image copy is one object ``<image_id>.<nonce>`` in the store's container (``glance``) of the service
project's account, reached with the service user's token. Data whose size is known up front and at most
``large_object_size`` goes up as one streamed object; anything else as segments of ``chunk_size`` bytes in
``<container>_segments`` (``<name>/00000001``, ...) joined by a static large object manifest at commit. Uploads
stream (chunked PUTs fed from a short queue), so no more than a few blocks are held at a time; nothing appears
under the container until the object's PUT or its manifest completes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from tinystack.core.svcauth import ServiceAuth, ServiceAuthError
from tinystack.image.drivers.base import Capacity, ObjectNotFound, StoreError, StoreFull

READ_CHUNK = 1024 * 1024
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
_LISTING_LIMIT = 10000


@dataclass(frozen=True)
class SwiftOptions:
    container: str
    large_object_size: int  # a known size up to this is one object; larger or unknown: segments + manifest
    chunk_size: int  # bytes per segment


def _error(what: str, status: int, text: str) -> StoreError:
    if status == 413:
        return StoreFull(f"object storage refused {what}: {text[:200]}")
    return StoreError(f"object storage answered {status} to {what}: {text[:200]}")


class _StreamingPut:
    """One chunked PUT fed chunk by chunk: ``send`` waits while the request is two chunks behind."""

    def __init__(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=2)
        self._task = asyncio.ensure_future(self._run(session, url, headers))
        self.size = 0

    async def _body(self) -> AsyncIterator[bytes]:
        while (item := await self._queue.get()) is not None:
            yield item

    async def _run(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
        try:
            async with session.put(url, data=self._body(), headers=headers) as resp:
                if resp.status != 201:
                    raise _error(f"PUT {url}", resp.status, await resp.text())
                return resp.headers.get("ETag", "").strip('"')
        except aiohttp.ClientError as exc:
            raise StoreError(f"object storage unreachable: {exc}") from exc

    async def _put(self, item: bytes | None) -> None:
        put = asyncio.ensure_future(self._queue.put(item))
        done, _ = await asyncio.wait([put, self._task], return_when=asyncio.FIRST_COMPLETED)
        if put not in done:
            put.cancel()
            self._task.result()  # raises the request's error
            raise StoreError("object storage ended the upload early")

    async def send(self, chunk: bytes) -> None:
        self.size += len(chunk)
        await self._put(chunk)

    async def finish(self) -> str:
        """End the body and return the stored object's ETag."""
        await self._put(None)
        return await self._task

    async def cancel(self) -> None:
        """Drop the request mid-body: the object server keeps nothing of an unfinished upload."""
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


class SwiftWriter:
    def __init__(self, store: SwiftStore, image_id: str, size: int | None) -> None:
        self._store = store
        self._name = f"{image_id}.{uuid.uuid4().hex[:12]}"
        self._single = size is not None and size <= store.options.large_object_size
        self._session: aiohttp.ClientSession | None = None
        self._token = ""
        self._base = ""
        self._put: _StreamingPut | None = None
        self._segments: list[dict[str, Any]] = []
        self._committed = False

    async def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._base, self._token = await self._store.endpoint()
            await self._store.ensure_containers(self._base, self._token)
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        return self._session

    def _segment_path(self, n: int) -> str:
        return f"{self._store.segments}/{self._name}/{n:08d}"

    async def _start(self) -> _StreamingPut:
        session = await self._open()
        # A fresh token per segment: a long upload outlives the one it started with.
        self._base, self._token = await self._store.endpoint()
        path = (f"{self._store.options.container}/{self._name}" if self._single
                else self._segment_path(len(self._segments) + 1))
        return _StreamingPut(session, f"{self._base}/{quote(path)}",
                             {"X-Auth-Token": self._token, "Content-Type": "application/octet-stream"})

    async def _end_segment(self) -> None:
        assert self._put is not None
        put, self._put = self._put, None
        etag = await put.finish()
        self._segments.append({"path": "/" + self._segment_path(len(self._segments) + 1), "etag": etag,
                               "size_bytes": put.size})

    async def write(self, chunks: Sequence[bytes]) -> None:
        limit = self._store.options.chunk_size
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                if self._put is None:
                    self._put = await self._start()
                room = len(view) if self._single else limit - self._put.size
                part = view if len(view) <= room else view[:room]
                await self._put.send(chunk if len(part) == len(chunk) else bytes(part))
                view = view[len(part):]
                if not self._single and self._put.size >= limit:
                    await self._end_segment()

    async def commit(self) -> str:
        if self._single or (not self._segments and self._put is None):
            # One object (an empty one when nothing was written); data of unknown size, however short, went
            # to a segment already and gets its manifest below.
            self._single = True
            put = self._put or await self._start()
            self._put = None
            await put.finish()
        else:
            if self._put is not None:
                await self._end_segment()
            session = await self._open()
            self._base, self._token = await self._store.endpoint()
            url = f"{self._base}/{quote(self._store.options.container)}/{quote(self._name)}?multipart-manifest=put"
            try:
                async with session.put(url, data=json.dumps(self._segments).encode(),
                                       headers={"X-Auth-Token": self._token,
                                                "Content-Type": "application/octet-stream"}) as resp:
                    if resp.status != 201:
                        raise _error("the manifest PUT", resp.status, await resp.text())
            except aiohttp.ClientError as exc:
                raise StoreError(f"object storage unreachable: {exc}") from exc
        self._committed = True
        await self._close()
        return self._name

    async def abort(self) -> None:
        if self._committed:
            return
        if self._put is not None:
            await self._put.cancel()
            self._put = None
        segments, self._segments = self._segments, []
        if segments and self._session is not None:
            for seg in segments:
                with contextlib.suppress(StoreError, aiohttp.ClientError):
                    await self._store.delete_path(self._session, self._base, self._token, seg["path"].lstrip("/"))
        await self._close()

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SwiftStore:
    """Objects in ``options.container`` of the account ``auth`` (the service user) owns."""

    kind = "swift"

    def __init__(self, store_id: str, options: SwiftOptions, auth: Callable[[], ServiceAuth]) -> None:
        self.store_id = store_id
        self.options = options
        self.segments = f"{options.container}_segments"
        self._auth = auth
        self._containers_made: str | None = None  # the account URL they were made in

    # --- plumbing ---------------------------------------------------------------------------------

    async def endpoint(self) -> tuple[str, str]:
        """The service account's URL and a token for it."""
        try:
            auth = self._auth()
            return await auth.endpoint("object-store"), await auth.token()
        except (ServiceAuthError, ValueError, OSError) as exc:
            raise StoreError(f"cannot reach object storage: {exc}") from exc

    async def _request(self, method: str, path: str, query: str = "", headers: dict[str, str] | None = None,
                       ok: tuple[int, ...] = (200, 201, 202, 204)) -> tuple[int, bytes, dict[str, str]]:
        """A small request with its body read; a 401 (a revoked token) is retried once with a fresh one."""
        for attempt in (1, 2):
            base, token = await self.endpoint()
            url = f"{base}/{quote(path)}" + (f"?{query}" if query else "")
            try:
                async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.request(
                        method, url, headers={"X-Auth-Token": token, **(headers or {})}) as resp:
                    body = await resp.read()
                    status, got = resp.status, dict(resp.headers)
            except aiohttp.ClientError as exc:
                raise StoreError(f"object storage unreachable: {exc}") from exc
            if status == 401 and attempt == 1:
                self._auth().invalidate()
                continue
            if status not in ok:
                if status == 404:
                    raise ObjectNotFound(f"no {path} in store {self.store_id}")
                raise _error(f"{method} {path}", status, body.decode(errors="replace"))
            return status, body, got
        raise AssertionError("unreachable")

    async def ensure_containers(self, base: str, token: str) -> None:
        if self._containers_made == base:
            return
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
            for container in (self.options.container, self.segments):
                try:
                    async with session.put(f"{base}/{quote(container)}", headers={"X-Auth-Token": token}) as resp:
                        if resp.status not in (201, 202, 204):
                            raise _error(f"creating container {container}", resp.status, await resp.text())
                except aiohttp.ClientError as exc:
                    raise StoreError(f"object storage unreachable: {exc}") from exc
        self._containers_made = base

    async def delete_path(self, session: aiohttp.ClientSession, base: str, token: str, path: str) -> None:
        async with session.delete(f"{base}/{quote(path)}", headers={"X-Auth-Token": token}) as resp:
            if resp.status not in (204, 404):
                raise _error(f"DELETE {path}", resp.status, await resp.text())

    def _object(self, location: str) -> str:
        # Locations are names this driver made: one path segment, nothing that climbs out of the container.
        if not location or "/" in location or location.startswith("."):
            raise ObjectNotFound(f"invalid location {location!r}")
        return f"{self.options.container}/{location}"

    async def _listing(self, container: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        marker = ""
        while True:
            try:
                _, body, _ = await self._request("GET", container, f"format=json&limit={_LISTING_LIMIT}"
                                                 f"&marker={quote(marker)}")
            except ObjectNotFound:
                return out  # the container was never made: nothing stored yet
            page = json.loads(body or b"[]")
            out.extend(page)
            if len(page) < _LISTING_LIMIT:
                return out
            marker = page[-1]["name"]

    # --- the driver contract ----------------------------------------------------------------------

    def writer(self, image_id: str, size: int | None = None) -> SwiftWriter:
        return SwiftWriter(self, image_id, size)

    async def read(self, location: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        path = self._object(location)
        if length == 0:
            return
        base, token = await self.endpoint()
        headers = {"X-Auth-Token": token}
        if offset or length is not None:
            headers["Range"] = f"bytes={offset}-" + (f"{offset + length - 1}" if length is not None else "")
        try:
            async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.get(
                    f"{base}/{quote(path)}", headers=headers) as resp:
                if resp.status == 404:
                    raise ObjectNotFound(f"no object {location} in store {self.store_id}")
                if resp.status == 416:
                    return  # a range starting at or past the end: nothing to send
                if resp.status not in (200, 206):
                    raise _error(f"GET {path}", resp.status, await resp.text())
                async for chunk in resp.content.iter_chunked(READ_CHUNK):
                    yield chunk
        except aiohttp.ClientError as exc:
            raise StoreError(f"object storage unreachable: {exc}") from exc

    async def size(self, location: str) -> int:
        _, _, headers = await self._request("HEAD", self._object(location))
        return int(headers.get("Content-Length", "0"))

    def local_path(self, location: str) -> Path | None:
        return None

    async def delete(self, location: str) -> None:
        """The object and, for a manifest, its segments (Swift's ``multipart-manifest=delete``)."""
        path = self._object(location)
        try:
            _, _, head = await self._request("HEAD", path)
            if head.get("X-Static-Large-Object", "").lower() not in ("true", "1", "yes"):
                await self._request("DELETE", path)
                return
            _, body, _ = await self._request("DELETE", path, "multipart-manifest=delete",
                                             {"Accept": "application/json"})
        except ObjectNotFound:
            return
        result = json.loads(body or b"{}")
        if result.get("Errors"):
            raise StoreError(f"deleting {location} from store {self.store_id} failed: {result['Errors']}")

    async def locations(self) -> list[str]:
        return [entry["name"] for entry in await self._listing(self.options.container)]

    async def sweep_partials(self, older_than: float) -> int:
        """Segments of uploads that never got their manifest, once the newest of them is ``older_than`` old."""
        committed = set(await self.locations())
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in await self._listing(self.segments):
            groups.setdefault(entry["name"].split("/", 1)[0], []).append(entry)
        cutoff, removed = time.time() - older_than, 0
        for name, entries in groups.items():
            if name in committed or max(_timestamp(e) for e in entries) >= cutoff:
                continue
            for entry in entries:
                with contextlib.suppress(ObjectNotFound):
                    await self._request("DELETE", f"{self.segments}/{entry['name']}")
            removed += 1
        return removed

    def capacity(self) -> Capacity:
        return Capacity(total=None, free=None)

    def describe(self) -> dict[str, Any]:
        return {"container": self.options.container, "large_object_size": self.options.large_object_size,
                "large_object_chunk_size": self.options.chunk_size}


def _timestamp(entry: dict[str, Any]) -> float:
    text = str(entry.get("last_modified", ""))
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return time.time()  # unknown: treat as fresh, never remove on a guess
