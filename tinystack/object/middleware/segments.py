"""What the large object middleware (dlo, slo) share: sub-requests down the pipeline and a byte range of one
segment copied from a replica into the client's response."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Handler
from tinystack.object.policies import INDEX_HEADER
from tinystack.object.request import PATH, SwiftPath

CHUNK = 64 * 1024
# Request headers a sub-request must not inherit: they concern the client's object, not the one asked for.
DROPPED = {"range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "content-length",
           "transfer-encoding", "etag", "content-md5", "x-copy-from"}


def sub_request(request: web.Request, method: str, path: SwiftPath, query: str = "",
                headers: dict[str, str] | None = None) -> web.Request:
    """A clone of ``request`` (same identity) for ``method`` on ``path``, without a body or conditions (or with
    exactly ``headers``)."""
    if headers is None:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED}
    clone = request.clone(method=method, headers=headers, rel_url=request.rel_url.with_query(query))
    clone[PATH] = path
    return clone


async def call(handler: Handler, request: web.Request) -> tuple[int, web.StreamResponse | None]:
    """The status of a sub-request and its response (None when it failed with an error)."""
    try:
        response = await handler(request)
    except errors.TinyError as err:
        return err.status, None
    return response.status, response


async def write_range(proxy: Any, response: web.StreamResponse, seg: SwiftPath, lo: int, hi: int) -> bool:
    """Copy bytes ``lo``..``hi``-1 of the segment into ``response``; False when no replica could give them."""
    # The segment's container may be of another storage policy than the manifest's.
    info = await proxy.info.get(seg.account, seg.container or "")
    policy = proxy.settings.policy(int(info.get("policy", 0)))
    part, primaries, handoffs = proxy.backend.nodes(policy.ring, *seg.names)
    want = {"Range": f"bytes={lo}-{hi - 1}", INDEX_HEADER: str(policy.index)}
    for dev in [*primaries, *itertools.islice(handoffs, len(primaries))]:
        resp = await proxy.backend.open(dev, "GET", part, seg.names, want)
        if resp is None:
            continue
        try:
            if resp.status >= 300:
                continue
            async for chunk in resp.content.iter_chunked(CHUNK):
                await response.write(chunk)
            return True
        finally:
            resp.release()
    return False


class BodyStream:
    """What the controllers read of ``request.content`` (``iter_any``, ``read``, ``readexactly``), fed by an
    async iterator: the body of a sub-request made by middleware (a form's file, an archive's member)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""
        self._done = False

    async def _next(self) -> bytes:
        if self._left:
            out, self._left = self._left, b""
            return out
        if self._done:
            return b""
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            self._done = True
            return b""

    async def iter_any(self) -> AsyncIterator[bytes]:
        while chunk := await self._next():
            yield chunk

    async def read(self, n: int = -1) -> bytes:
        if n < 0:
            return b"".join([c async for c in self.iter_any()])
        chunk = await self._next()
        self._left, chunk = chunk[n:], chunk[:n]
        return chunk

    async def readexactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = await self.read(n - len(out))
            if not chunk:
                raise asyncio.IncompleteReadError(out, n)
            out += chunk
        return out


def with_body(request: web.Request, chunks: AsyncIterator[bytes]) -> web.Request:
    """``request`` (a clone made by ``sub_request``) reading its body from ``chunks``."""
    # aiohttp has no public way to give a cloned request another body; the controllers only read
    # ``request.content``, which is this attribute.
    setattr(request, "_payload", BodyStream(chunks))  # noqa: B010
    return request
