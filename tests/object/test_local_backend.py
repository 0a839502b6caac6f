"""The proxy's in-process path to the object server of its own process (local.py): the same answers as over HTTP
for every kind of object request (small and streamed PUTs, GET whole, ranged and multi-range, HEAD, conditions,
POST, COPY, DELETE, refusals), HTTP again once the node stops serving, and the server's own checks on a body that
ends short."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.object.test_hot_paths import ACCOUNT, _settings
from tinystack.core.auth import RequestContext
from tinystack.object import local
from tinystack.object.common import normalize_timestamp
from tinystack.object.local import LocalRequest, LocalResponse
from tinystack.object.proxy.app import build
from tinystack.object.servers.node import StorageNode

pytestmark = pytest.mark.api

VARYING = {"x-timestamp", "last-modified", "x-trans-id", "x-openstack-request-id", "date", "server",
           "x-copied-from-last-modified"}
LARGE = bytes(range(256)) * 12 * 1024  # 3 MiB: over the proxy's whole-body limit, so fanned out in pieces


def _validator(token: str) -> RequestContext:
    return RequestContext(user_id="u1", project_id="p1", roles=("member",), token=token)


async def _pieces(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def _exercise(client: TestClient[Any, Any], container: str) -> list[tuple[Any, ...]]:
    """A run of object requests; what each answered, without what differs between two runs (times, ids)."""
    h = {"X-Auth-Token": "t"}
    base = f"/v1/{ACCOUNT}/{container}"
    seen: list[tuple[Any, ...]] = []

    async def record(method: str, path: str, **kw: Any) -> None:
        resp = await client.request(method, base + path, **{"headers": h, **kw})
        body = await resp.read()
        headers = {k.lower(): v.replace(container, "C") for k, v in resp.headers.items() if k.lower() not in VARYING}
        if headers.get("content-type", "").startswith("multipart/byteranges"):
            headers["content-type"] = "multipart/byteranges"  # the boundary is random, its length is not
            body = str(len(body)).encode()
        seen.append((method, path, resp.status, sorted(headers.items()), hashlib.md5(body).hexdigest()))

    await record("PUT", "")
    await record("PUT", "/small", data=b"hello world", headers={**h, "X-Object-Meta-Color": "blue",
                                                               "Content-Type": "text/plain"})
    await record("PUT", "/bad-etag", data=b"abc", headers={**h, "ETag": "0" * 32})
    await record("PUT", "/large", data=_pieces(LARGE))  # chunked from the client too
    await record("GET", "/small")
    await record("HEAD", "/small")
    await record("GET", "/small", headers={**h, "Range": "bytes=1-3"})
    await record("GET", "/small", headers={**h, "Range": "bytes=0-1,4-5"})
    await record("GET", "/small", headers={**h, "If-None-Match": hashlib.md5(b"hello world").hexdigest()})
    await record("GET", "/large")
    await record("GET", "/large", headers={**h, "Range": "bytes=1000000-2000000"})
    await record("HEAD", "/large")
    await record("GET", "/bad-etag")
    await record("POST", "/small", headers={**h, "X-Object-Meta-Size": "big"})
    await record("HEAD", "/small")
    await record("PUT", "/copy", data=b"", headers={**h, "X-Copy-From": f"{container}/large"})
    await record("GET", "/copy")
    await record("PUT", "/small", data=b"x", headers={**h, "If-None-Match": "*"})
    for name in ("small", "large", "copy"):
        await record("DELETE", f"/{name}")
    await record("DELETE", "/small")
    await record("GET", "/small")
    await record("GET", "?format=json")
    return seen


def test_in_process_answers_as_http(tmp_path: Path) -> None:
    async def run() -> None:
        s = _settings(tmp_path)
        node = StorageNode(s)
        await node.start()
        ip, port = s.storage_ip, node.ports["object"]
        entry = local.served(ip, port)
        assert entry is not None
        calls: list[str] = []

        async def counted(request: LocalRequest) -> Any:
            calls.append(request.method)
            return await entry(request)

        client = TestClient(TestServer(build(s, _validator).build()))
        await client.start_server()
        try:
            local.serve(ip, port, counted)
            in_process = await _exercise(client, "c1")
            assert {"PUT", "GET", "HEAD", "POST", "DELETE"} <= set(calls)
            local.stop_serving(ip, port)
            calls.clear()
            over_http = await _exercise(client, "c2")
            assert calls == []
            assert in_process == over_http
            statuses = [s for _, _, s, _, _ in in_process]
            assert statuses == [201, 201, 422, 201, 200, 200, 206, 206, 304, 200, 206, 200, 404, 202, 200, 201, 200,
                                412, 204, 204, 204, 404, 404, 200]
        finally:
            await client.close()
            await node.stop()
        assert local.served(ip, port) is None  # a stopped node is reached (and found down) over HTTP

    asyncio.run(run())


@contextlib.asynccontextmanager
async def _node(tmp_path: Path) -> AsyncIterator[tuple[Path, local.Served]]:
    """A started storage node: its devices and its object server's in-process entry."""
    s = _settings(tmp_path)
    node = StorageNode(s)
    await node.start()
    try:
        entry = local.served(s.storage_ip, node.ports["object"])
        assert entry is not None
        yield s.devices, entry
    finally:
        await node.stop()


def test_body_that_ends_short_is_refused_and_not_stored(tmp_path: Path) -> None:
    async def run() -> None:
        async with _node(tmp_path) as (devices, entry):
            ts = normalize_timestamp(1_700_000_000)
            for body in (b"12345", _pieces(b"12345", 2)):
                headers = {"X-Timestamp": ts, "Content-Length": "10", "Content-Type": "text/plain"}
                answer = LocalResponse(await entry(LocalRequest("PUT", "d1", 1, (ACCOUNT, "c", "o"), headers, body)),
                                       "PUT")
                assert answer.status == 499
            got = LocalResponse(await entry(LocalRequest("GET", "d1", 1, (ACCOUNT, "c", "o"), {})), "GET")
            assert got.status == 404
            assert not list((devices / "d1").rglob("*.data"))
            bad = LocalResponse(await entry(LocalRequest("GET", "d1", 1, (ACCOUNT,), {})), "GET")
            assert bad.status == 400  # the server's own path check

    asyncio.run(run())


def test_released_stream_closes_the_file(tmp_path: Path) -> None:
    async def run() -> None:
        async with _node(tmp_path) as (_devices, entry):
            headers = {"X-Timestamp": normalize_timestamp(1_700_000_000), "Content-Type": "text/plain"}
            put = await entry(LocalRequest("PUT", "d2", 3, (ACCOUNT, "c", "big"), headers, _pieces(LARGE)))
            assert put.status == 201
            opened = LocalResponse(await entry(LocalRequest("GET", "d2", 3, (ACCOUNT, "c", "big"), {})), "GET")
            assert opened.headers["Content-Length"] == str(len(LARGE))
            first = await anext(opened.content.iter_chunked(65536))
            assert first == LARGE[:65536]
            stream: Any = opened._stream
            opened.release()
            assert stream.f.closed
            whole = LocalResponse(await entry(LocalRequest("GET", "d2", 3, (ACCOUNT, "c", "big"), {})), "GET")
            assert await whole.read() == LARGE

    asyncio.run(run())


def test_a_slow_device_times_out_and_still_finishes_its_write(tmp_path: Path) -> None:
    """As over HTTP: the proxy stops waiting after node_timeout (the write stands on the other two replicas),
    and the slow server completes what it started; a read that does not answer in time is given up (it has
    nothing to finish) and the next replica answers."""
    async def run() -> None:
        s = _settings(tmp_path, node_timeout="0.3")
        node = StorageNode(s)
        await node.start()
        ip, port = s.storage_ip, node.ports["object"]
        entry = local.served(ip, port)
        assert entry is not None

        held = asyncio.Event()

        async def slow_d1(request: LocalRequest) -> Any:
            if request.path.startswith("/d1/") and request.method == "PUT":
                await held.wait()  # until the proxy has answered: it must not wait for this one
            return await entry(request)

        local.serve(ip, port, slow_d1)
        client = TestClient(TestServer(build(s, _validator).build()))
        await client.start_server()
        try:
            h = {"X-Auth-Token": "t"}
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=h)).status == 201
            put = await client.put(f"/v1/{ACCOUNT}/c/o", data=b"body", headers=h)
            assert put.status == 201

            def stored() -> list[int]:
                return [len(list((s.devices / d).rglob("*.data"))) for d in ("d1", "d2", "d3")]

            assert stored() == [0, 1, 1]
            held.set()
            for _ in range(200):
                if stored() == [1, 1, 1]:
                    break
                await asyncio.sleep(0.05)
            assert stored() == [1, 1, 1]

            hung: list[str] = []

            async def first_read_hangs(request: LocalRequest) -> Any:
                if request.method == "GET" and not hung:
                    hung.append(request.path)
                    await asyncio.Event().wait()
                return await entry(request)

            local.serve(ip, port, first_read_hangs)
            got = await client.get(f"/v1/{ACCOUNT}/c/o", headers=h)
            assert (got.status, await got.read(), len(hung)) == (200, b"body", 1)
        finally:
            await client.close()
            await node.stop()

    asyncio.run(run())


def test_shared_digest_hashes_each_byte_once_whatever_the_grouping() -> None:
    """Writers of one body report it in groups of their own, in any interleaving; the digest is the body's."""
    body = bytes(range(256)) * 40
    digest = local.SharedDigest()
    groupings = [[body[i:i + 1000] for i in range(0, len(body), 1000)],
                 [body[i:i + 4096] for i in range(0, len(body), 4096)],
                 [body]]
    offsets = [0, 0, 0]
    progress = True
    while progress:
        progress = False
        for w, groups in enumerate(groupings):
            if groups:
                piece = groups.pop(0)
                offsets[w] += len(piece)
                digest.catch_up([piece], offsets[w])
                progress = True
    assert digest.hexdigest(len(body)) == hashlib.md5(body).hexdigest()
    with pytest.raises(RuntimeError):
        digest.hexdigest(len(body) - 1)  # not what was hashed: never a wrong ETag
    gap = local.SharedDigest()
    gap.catch_up([b"abc"], 3)
    with pytest.raises(RuntimeError):
        gap.catch_up([b"xyz"], 9)  # bytes 3-6 never reported


def test_fanned_out_body_is_checked_against_its_etag_by_every_server(tmp_path: Path) -> None:
    """The replicas in this process share the body's MD5: a wrong ETag is still refused (422, nothing stored),
    a right Content-MD5 stored on all three devices."""
    async def run() -> None:
        s = _settings(tmp_path)
        node = StorageNode(s)
        await node.start()
        client = TestClient(TestServer(build(s, _validator).build()))
        await client.start_server()
        try:
            h = {"X-Auth-Token": "t"}
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers=h)).status == 201
            bad = await client.put(f"/v1/{ACCOUNT}/c/bad", data=_pieces(LARGE), headers={**h, "ETag": "0" * 32})
            assert bad.status == 422
            assert not list(s.devices.rglob("*.data"))
            md5 = hashlib.md5(LARGE)
            good = await client.put(f"/v1/{ACCOUNT}/c/good", data=LARGE,
                                    headers={**h, "Content-MD5": base64.b64encode(md5.digest()).decode()})
            assert good.status == 201 and good.headers["ETag"] == md5.hexdigest()
            assert len(list(s.devices.rglob("*.data"))) == 3
            got = await client.get(f"/v1/{ACCOUNT}/c/good", headers=h)
            assert await got.read() == LARGE
        finally:
            await client.close()
            await node.stop()

    asyncio.run(run())
