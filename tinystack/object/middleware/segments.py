"""What the large object middleware (dlo, slo) share: sub-requests down the pipeline and a byte range of one
segment copied from a replica into the client's response."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Handler
from tinystack.object.request import PATH, SwiftPath

CHUNK = 64 * 1024
# Request headers a sub-request must not inherit: they concern the client's object, not the one asked for.
DROPPED = {"range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "content-length",
           "transfer-encoding", "etag", "content-md5", "x-copy-from"}


def sub_request(request: web.Request, method: str, path: SwiftPath, query: str = "") -> web.Request:
    """A clone of ``request`` (same identity) for ``method`` on ``path``, without a body or conditions."""
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
    part, primaries, handoffs = proxy.backend.nodes("object", *seg.names)
    want = {"Range": f"bytes={lo}-{hi - 1}"}
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
