"""Downloads from a store without local paths (an object store) are streamed with ranges, like files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.web import CTX
from tinystack.image.api.data import DataAPI, byte_range
from tinystack.image.data import DataHandle

DATA = bytes(range(256)) * 64


async def _read(offset: int, length: int | None) -> AsyncIterator[bytes]:
    end = len(DATA) if length is None else offset + length
    for i in range(offset, end, 1000):
        yield DATA[i : min(i + 1000, end)]


def _app() -> web.Application:
    handle = DataHandle(size=len(DATA), checksum="abc", path=None, read=_read)
    svc: Any = SimpleNamespace(data=SimpleNamespace(download=lambda ctx, image_id: handle), cache=None)
    api = DataAPI(svc)
    app = web.Application()

    async def download(request: web.Request) -> web.StreamResponse:
        request[CTX] = RequestContext(user_id="u")
        return await api.download(request)

    app.router.add_get("/v2/images/{image_id}/file", download)
    return app


def test_streamed_download_and_ranges() -> None:
    async def scenario() -> None:
        async with TestClient(TestServer(_app())) as client:
            whole = await client.get("/v2/images/x/file")
            assert whole.status == 200 and await whole.read() == DATA
            assert whole.headers["Content-MD5"] == "abc"
            part = await client.get("/v2/images/x/file", headers={"Range": "bytes=100-2099"})
            assert part.status == 206 and await part.read() == DATA[100:2100]
            assert part.headers["Content-Range"] == f"bytes 100-2099/{len(DATA)}"
            assert "Content-MD5" not in part.headers

    asyncio.run(scenario())


def test_byte_range() -> None:
    assert byte_range(None, 10) is None
    assert byte_range("bytes=2-4", 10) == (2, 5)
    assert byte_range("bytes=5-", 10) == (5, 10)
    assert byte_range("bytes=-3", 10) == (7, 10)
    assert byte_range("bytes=8-100", 10) == (8, 10)
    for bad in ("bytes=10-", "bytes=5-2", "bytes=-", "items=0-1", "bytes=0-1,3-4"):
        with pytest.raises(errors.RangeNotSatisfiable):
            byte_range(bad, 10)
