"""Image data endpoints: upload, download (with ranges), stage, import, delete from one store."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import REQUEST_ID, Route, ctx, empty, read_json
from tinystack.image import schemas, transfer
from tinystack.image.api.common import body, require_octet_stream, size_hint
from tinystack.image.data import DataHandle
from tinystack.image.service import ImageService

log = logging.getLogger(__name__)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single ``Range`` a request asks for as (start, end-exclusive), None for the whole; 416 when it
    cannot be satisfied."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        raise errors.RangeNotSatisfiable(f"Invalid Range header: {header}")
    first, last = m.group(1), m.group(2)
    if not first:
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), (min(int(last) + 1, size) if last else size)
    if start >= size or start >= end:
        raise errors.RangeNotSatisfiable(f"Requested range {header} not satisfiable for {size} bytes")
    return start, end


class DataAPI:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("PUT", "/v2/images/{image_id}/file", self.upload),
            Route("GET", "/v2/images/{image_id}/file", self.download),
            Route("PUT", "/v2/images/{image_id}/stage", self.stage),
            Route("POST", "/v2/images/{image_id}/import", self.import_image),
            Route("DELETE", "/v2/stores/{store_id}/{image_id}", self.delete_from_store),
        ]

    async def upload(self, request: web.Request) -> web.Response:
        require_octet_stream(request)
        await self.svc.data.upload(ctx(request), request.match_info["image_id"], body(request), size_hint(request),
                                   request.headers.get("X-Image-Meta-Store"))
        return empty()

    async def stage(self, request: web.Request) -> web.Response:
        require_octet_stream(request)
        await self.svc.data.stage(ctx(request), request.match_info["image_id"], body(request), size_hint(request))
        return empty()

    async def import_image(self, request: web.Request) -> web.Response:
        doc = await read_json(request, schemas.IMPORT)
        await self.svc.imports.import_image(ctx(request), request.match_info["image_id"], doc, request[REQUEST_ID],
                                         request.headers.get("X-Image-Meta-Store"))
        return empty(202)

    async def delete_from_store(self, request: web.Request) -> web.Response:
        await self.svc.data.delete_from_store(ctx(request), request.match_info["store_id"],
                                              request.match_info["image_id"])
        return empty()

    async def download(self, request: web.Request) -> web.StreamResponse:
        handle = self.svc.data.download(ctx(request), request.match_info["image_id"])
        if handle is None:
            return empty()
        wanted = byte_range(request.headers.get("Range"), handle.size)
        headers = {"Content-Type": "application/octet-stream"}
        if wanted is None and handle.checksum:
            headers["Content-MD5"] = handle.checksum
        if handle.path is not None:
            # aiohttp answers Range itself (206, Content-Range, 416) and uses sendfile(2) where the loop
            # can; under uvloop it reads in chunks on a thread, so make those chunks large.
            return web.FileResponse(handle.path, chunk_size=transfer.BLOCK, headers=headers)
        return await self._stream(request, handle, wanted, headers)

    async def _stream(self, request: web.Request, handle: DataHandle, wanted: tuple[int, int] | None,
                      headers: dict[str, str]) -> web.StreamResponse:
        start, end = wanted or (0, handle.size)
        response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
        if wanted:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{handle.size}"
        response.content_length = end - start
        await response.prepare(request)
        cache = self.svc.cache
        # A whole download from a remote store also fills this node's cache: the next one is read from disk.
        fill = None
        if cache is not None and wanted is None and handle.checksum and handle.image_id:
            try:
                fill = await asyncio.to_thread(cache.begin, handle.image_id)
            except OSError as exc:
                log.warning("image cache: cannot start a copy of %s: %s", handle.image_id, exc)
        if fill is None:
            async for chunk in handle.read(start, end - start):
                await response.write(chunk)
            await response.write_eof()
            return response
        # The last chunk waits until the copy is installed: a client that has every byte finds it cached.
        held: bytes | None = None
        try:
            async for chunk in handle.read(start, end - start):
                await fill.add(chunk)
                if held is not None:
                    await response.write(held)
                held = chunk
        except BaseException:
            fill.abort()
            raise
        await fill.finish(handle.size, handle.checksum or "")
        if held is not None:
            await response.write(held)
        await response.write_eof()
        return response
