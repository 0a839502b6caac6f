"""Helpers shared by the image handlers: request data as the service wants it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from tinystack.core import errors
from tinystack.image import transfer


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def require_octet_stream(request: web.Request) -> None:
    if "Content-Type" in request.headers and request.content_type != "application/octet-stream":
        raise errors.UnsupportedMediaType(f"Content type {request.content_type} is not supported; use "
                                          "application/octet-stream.")


def size_hint(request: web.Request) -> int | None:
    """The announced data size: ``X-OpenStack-Image-Size``, else Content-Length; None when unknown."""
    raw = request.headers.get("X-OpenStack-Image-Size")
    if raw is None:
        return request.content_length
    try:
        size = int(raw)
    except ValueError:
        raise errors.BadRequest("Invalid or missing image size in request headers.") from None
    if size < 0:
        raise errors.BadRequest("Invalid or missing image size in request headers.")
    return size


async def body(request: web.Request) -> AsyncIterator[bytes]:
    """The request body as the socket delivered it: no joining, so no copying."""
    content = request.content
    # Let a block's worth accumulate before aiohttp pauses the socket (fewer pause/resume cycles).
    if hasattr(content, "set_read_chunk_size"):
        content.set_read_chunk_size(transfer.BLOCK)
    try:
        async for chunk, _ in content.iter_chunks():
            yield chunk
    except (OSError, HttpProcessingError, asyncio.IncompleteReadError) as exc:
        raise transfer.SourceError(f"the upload was interrupted ({exc})") from exc
