"""Backend requests between a proxy and the storage servers that run in the same process (``tinystack up``): the
request a storage server's handlers read and the answer the proxy reads, handed over as objects instead of HTTP
messages on loopback. The server side runs the same app handlers, middleware and validation as for an HTTP
request (``servers/base.py``); the proxy keeps HTTP for every device served by another process or machine."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from tinystack.object.common import quote_path

_NO_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())


class SharedDigest:
    """The MD5 of one body that several writers in this process store at once (the replicas of a PUT fanned out
    to this process's devices), computed once instead of once per writer. Each writer reports the pieces it
    wrote and where they end in the body (``catch_up``); whichever is furthest ahead hashes the bytes no one
    hashed yet, the others find them done. Correct because every writer is given the same bytes in the same
    order (a fan-out of one stream); it only saves the repeated work on identical bytes."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._hashed = 0
        self._lock = threading.Lock()

    def catch_up(self, pieces: list[bytes], end: int) -> None:
        """``pieces`` are the body's bytes up to offset ``end`` (blocking: hashlib lets go of the GIL, so run it
        in the writer's thread)."""
        if self._hashed >= end:
            return  # hashed by a writer ahead of this one; no need to wait for the lock it may hold meanwhile
        with self._lock:
            skip = self._hashed - (end - sum(len(p) for p in pieces))
            if skip < 0:  # a writer skipped reporting some bytes: a bug, and an ETag that would be wrong
                raise RuntimeError("shared body digest: bytes not reported")
            for piece in pieces:
                if skip >= len(piece):
                    skip -= len(piece)
                    continue
                self._md5.update(memoryview(piece)[skip:] if skip else piece)
                skip = 0
            self._hashed = max(self._hashed, end)

    def hexdigest(self, size: int) -> str:
        """The digest of the body's first ``size`` bytes, which must be all that was hashed."""
        with self._lock:
            if self._hashed != size:
                raise RuntimeError(f"shared body digest covers {self._hashed} bytes, not {size}")
            return self._md5.hexdigest()


class SharedBody:
    """A streamed body for in-process servers that comes with the ``SharedDigest`` of its bytes (the pieces are
    iterated as usual; an HTTP client sends them like any other async iterator)."""

    def __init__(self, pieces: AsyncIterator[bytes], digest: SharedDigest) -> None:
        self.pieces = pieces
        self.digest = digest

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.pieces


Body = bytes | AsyncIterator[bytes] | SharedBody | None


class LocalBody:
    """What handlers read of ``request.content`` (``readexactly``, ``read``, ``iter_any``), given the whole body
    or an async iterator of its pieces, which are passed on as they are (no copy). ``digest``: the shared MD5 of
    a body fanned out to several servers of this process, else None."""

    def __init__(self, body: Body) -> None:
        self.digest = body.digest if isinstance(body, SharedBody) else None
        self._body: bytes | AsyncIterator[bytes] | None = body.pieces if isinstance(body, SharedBody) else body
        self.streamed = body is not None and not isinstance(body, bytes)  # given as pieces

    async def iter_any(self) -> AsyncIterator[bytes]:
        body, self._body = self._body, None
        if isinstance(body, bytes):
            if body:
                yield body
        elif body is not None:
            async for chunk in body:
                if chunk:
                    yield chunk

    async def read(self) -> bytes:
        if isinstance(self._body, bytes):
            body, self._body = self._body, None
            return body
        return b"".join([chunk async for chunk in self.iter_any()])

    async def readexactly(self, n: int) -> bytes:
        data = await self.read()
        if len(data) != n:
            # What aiohttp's reader raises for a body that ends short (one that is longer is as wrong here).
            raise asyncio.IncompleteReadError(data[:n], n)
        return data


class LocalRequest:
    """One backend request made in this process, to ``/<device>/<partition>/<names...>``: the attributes of
    ``web.Request`` the storage servers' handlers and middleware read (method, path, raw_path, query, headers,
    content)."""

    def __init__(self, method: str, device: str, part: int, names: tuple[str, ...], headers: Mapping[str, str],
                 body: Body = None, query: Mapping[str, str] | None = None) -> None:
        self.method = method
        self.path = "/" + "/".join((device, str(part), *names))
        raw = quote_path(device, str(part), *names)
        self.raw_path = f"{raw}?{urlencode(query)}" if query else raw
        given = CIMultiDict(headers)
        # The framing headers an HTTP client adds, which the handlers check (411 without either).
        if isinstance(body, bytes):
            given.setdefault("Content-Length", str(len(body)))
        elif body is not None and "Content-Length" not in given:
            given.setdefault("Transfer-Encoding", "chunked")
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(given)
        self.query: MultiDictProxy[str] = MultiDictProxy(MultiDict(query)) if query else _NO_QUERY
        self.content = LocalBody(body)


# A storage server's entry for in-process requests: its app's handlers behind its error middleware.
Served = Callable[[LocalRequest], Awaitable[web.StreamResponse]]


class Chunks(Protocol):
    """A response body read piece by piece (a file): iterated once, ``close`` when it is left unread."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class Streamed(web.Response):
    """A response whose body is ``chunks`` of a length the handler put in Content-Length: aiohttp sends them
    with that length; an in-process caller takes the pieces as they are."""

    def __init__(self, status: int, headers: Mapping[str, str], chunks: Chunks) -> None:
        super().__init__(status=status, headers=headers, body=chunks)
        self.chunks = chunks


class _Content:
    def __init__(self, response: LocalResponse) -> None:
        self._response = response

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._response.pieces()

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        # Pieces of at most ``n`` bytes, as aiohttp's reader gives them.
        async for chunk in self._response.pieces():
            if len(chunk) <= n:
                yield chunk
            else:
                view = memoryview(chunk)
                for start in range(0, len(chunk), n):
                    yield bytes(view[start:start + n])


class LocalResponse:
    """A storage server's answer as the proxy reads an aiohttp client response: ``status``, ``headers`` (with the
    Content-Length the wire would carry), ``read()``, ``content.iter_any()``/``iter_chunked()``, ``release()``."""

    def __init__(self, response: web.StreamResponse, method: str) -> None:
        self.status = response.status
        headers = CIMultiDict(response.headers)
        self._stream: Chunks | None = None
        self._bytes = b""
        if isinstance(response, Streamed):
            self._stream = response.chunks
        elif isinstance(response, web.Response) and isinstance(response.body, bytes):
            self._bytes = response.body
        if "Content-Length" not in headers and self._stream is None:
            headers["Content-Length"] = str(len(self._bytes))
        if method == "HEAD":
            self.release()
            self._bytes = b""
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(headers)
        self.content = _Content(self)

    async def pieces(self) -> AsyncIterator[bytes]:
        data, self._bytes = self._bytes, b""
        if data:
            yield data
        stream: AsyncIterable[bytes] | None = self._stream
        if stream is not None:
            try:
                async for chunk in stream:
                    yield chunk
            finally:
                self.release()

    async def read(self) -> bytes:
        if self._stream is None:
            data, self._bytes = self._bytes, b""
            return data
        return b"".join([chunk async for chunk in self.pieces()])

    def release(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


# A container server's entry for object updates from an object server of this process: the updates (dicts as a
# batch POST carries them) in, the status of each out (ContainerServer.apply_updates), without HTTP and JSON.
UpdatesEntry = Callable[[list[dict[str, Any]]], list[int]]
_updates: dict[str, UpdatesEntry] = {}


def serve_updates(ip: str, port: int, entry: UpdatesEntry) -> None:
    _updates[f"{ip}:{port}"] = entry


def stop_serving_updates(ip: str, port: int) -> None:
    _updates.pop(f"{ip}:{port}", None)


def updates_served(host: str) -> UpdatesEntry | None:
    """The entry of the container server at ``host`` (``ip:port``) when it runs in this process."""
    return _updates.get(host)


# The storage servers of this process by the address they listen on (what a ring's device names): a proxy in the
# same process reaches those through ``Served`` and every other address over HTTP.
_served: dict[tuple[str, int], Served] = {}


def serve(ip: str, port: int, entry: Served) -> None:
    _served[(ip, port)] = entry


def stop_serving(ip: str, port: int) -> None:
    _served.pop((ip, port), None)


def served(ip: str, port: int) -> Served | None:
    return _served.get((ip, port))
