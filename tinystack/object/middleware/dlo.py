"""Dynamic large objects (what ``swift upload --segment-size`` makes): an object with ``X-Object-Manifest:
<container>/<prefix>`` reads as its segments (the container's objects under the prefix, in name order) joined,
with a single Range served across them. ``?multipart-manifest=get`` reads the manifest itself."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.object import httprange
from tinystack.object.common import status_error
from tinystack.object.middleware.segments import write_range
from tinystack.object.request import AUTH, PATH, SwiftPath


def _clone(request: web.Request, path: SwiftPath) -> web.Request:
    clone = request.clone(method="GET")
    clone[PATH] = path
    return clone


def make(proxy: Any, **_: Any) -> Any:
    async def segments(account: str, container: str, prefix: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        marker = ""
        while True:
            answer = await proxy.backend.read("container", "GET", (account, container), {},
                                              query={"prefix": prefix, "marker": marker})
            if answer.status == 404:
                return out
            if answer.status >= 300:
                raise status_error(503, "The segments could not be listed.")
            rows = [r for r in json.loads(answer.body) if "subdir" not in r]
            if not rows:
                return out
            out.extend(rows)
            marker = rows[-1]["name"]

    async def serve(request: web.Request, path: SwiftPath, manifest: str, first: web.StreamResponse) -> web.StreamResponse:
        container, _, prefix = unquote(manifest).lstrip("/").partition("/")
        if not container:
            return first
        seg_container = SwiftPath(path.version, path.account, container, None)
        await request[AUTH].authorize(_clone(request, seg_container),
                                      lambda: proxy.info.get(path.account, container))
        rows = await segments(path.account, container, prefix)
        total = sum(int(r["size"]) for r in rows)
        etag = hashlib.md5("".join(r["etag"] for r in rows).encode(), usedforsecurity=False).hexdigest()
        headers = {k: v for k, v in first.headers.items()
                   if k.lower() not in ("content-length", "etag", "content-range", "content-type")}
        headers["ETag"] = f'"{etag}"'
        content_type = first.headers.get("Content-Type", "application/octet-stream")
        ranges = httprange.parse_ranges(request.headers.get("Range"), total) if total else None
        start, end, status = 0, total, 200
        if ranges is not None and len(ranges) == 1:
            (start, end), status = ranges[0], 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
        headers["Content-Length"] = str(end - start)
        headers["Content-Type"] = content_type
        if request.method == "HEAD":
            return web.Response(status=status, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        offset = 0
        for row in rows:
            size = int(row["size"])
            lo, hi = max(start, offset), min(end, offset + size)
            offset += size
            if lo >= hi:
                continue
            seg = SwiftPath(path.version, path.account, container, row["name"])
            if not await write_range(proxy, response, seg, lo - (offset - size), hi - (offset - size)):
                # A segment gone mid-read: the client sees a short body, as Swift's DLO leaves it.
                break
        await response.write_eof()
        return response

    @web.middleware
    async def dlo(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.get(PATH)
        if (path is None or path.obj is None or request.method not in ("GET", "HEAD")
                or request.query.get("multipart-manifest") == "get"):
            return await handler(request)
        # A manifest answers a ranged GET whole (the object server ignores a Range on it, its own body being
        # empty): the range is served here, across the segments.
        first = await handler(request)
        manifest = first.headers.get("X-Object-Manifest")
        if manifest is None or first.status != 200:
            return first
        return await serve(request, path, manifest, first)

    return dlo
