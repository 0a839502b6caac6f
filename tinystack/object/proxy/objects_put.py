"""Object PUT: checks, then the body to every target device at once (primaries, handoffs for those that are
down), each device told which container server to update; the write stands when a quorum stored it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import mimetypes
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import StreamReader, web

from tinystack.object import constraints
from tinystack.object.common import now, status_error
from tinystack.object.httprange import http_date
from tinystack.object.local import SharedBody, SharedDigest
from tinystack.object.proxy.backend import Answer, quorum, write_status
from tinystack.object.proxy.common import Proxy, fail, object_policy
from tinystack.object.request import SwiftPath

SMALL = 1024 * 1024
CHUNK = 64 * 1024
FAN_OUT_CHUNK = 1024 * 1024  # bytes of a large body handed to every target at once
FAN_OUT_QUEUE = 4  # groups a target may be behind the fastest one before the body waits for it
# Client headers an object keeps.
KEPT = ("content-type", "content-encoding", "content-disposition", "content-language", "x-delete-at",
        "x-object-manifest", "cache-control", "expires")


def object_headers(request_headers: Any, timestamp: str, name: str) -> dict[str, str]:
    """The backend headers of a new object: its metadata, content type (guessed from the name when not given),
    expiry and expected ETag (from ETag or Content-MD5)."""
    out = {"X-Timestamp": timestamp}
    for key, value in request_headers.items():
        low = key.lower()
        if low in KEPT or low.startswith(("x-object-meta-", "x-object-sysmeta-")):
            out[key] = value
    if not request_headers.get("Content-Type") or request_headers.get("X-Detect-Content-Type", "").lower() == "true":
        out["Content-Type"] = mimetypes.guess_type(name)[0] or "application/octet-stream"
    delete_at = constraints.check_delete_headers(request_headers, float(timestamp))
    out.pop("X-Delete-After", None)
    if delete_at is not None:
        out["X-Delete-At"] = str(delete_at)
    etag = request_headers.get("ETag", "").strip('"')
    md5 = request_headers.get("Content-MD5")
    if md5:
        try:
            digest = base64.b64decode(md5, validate=True).hex()
        except (binascii.Error, ValueError):
            raise status_error(400, "Invalid Content-MD5") from None
        if etag and etag.lower() != digest:
            raise status_error(422, "Content-MD5 and ETag disagree")
        etag = digest
    if etag:
        out["ETag"] = etag
    return out


def check_put(proxy: Proxy, request: web.Request, path: SwiftPath) -> int | None:
    """The body length (None when chunked); 400/411/413 for what Swift refuses before reading the body."""
    assert path.obj is not None
    constraints.check_object_name(path.obj)
    constraints.check_metadata(request.headers, "object")
    if len(request.headers) > constraints.MAX_HEADER_COUNT:
        raise status_error(400, "Too many headers")
    te = request.headers.get("Transfer-Encoding", "").lower()
    length = request.headers.get("Content-Length")
    if length is None:
        if te != "chunked":
            raise status_error(411, "Missing Content-Length or chunked Transfer-Encoding")
        return None
    try:
        size = int(length)
    except ValueError:
        raise status_error(400, "Invalid Content-Length") from None
    if size < 0:
        raise status_error(400, "Invalid Content-Length")
    if size > proxy.settings.max_file_size:
        raise status_error(413, "Your request is too large.")
    return size


async def store(proxy: Proxy, path: SwiftPath, headers: dict[str, str], body: bytes | AsyncIterator[bytes],
                ) -> web.Response:
    """Write an object (the body whole, or as chunks) and answer as Swift does."""
    names = path.names
    backend = proxy.backend
    policy, named = await object_policy(proxy, path.account, path.container or "")
    headers = {**headers, **named}
    part, primaries, handoffs = backend.nodes(policy.ring, *names)
    cpart, cnodes, _ = backend.nodes("container", path.account, path.container)
    targets = backend.targets(primaries, handoffs, len(primaries))
    if len(targets) < quorum(len(primaries)):
        return fail(503)

    def node_headers(i: int) -> dict[str, str]:
        c = cnodes[i % len(cnodes)]
        return {**headers, "X-Container-Host": f"{c.ip}:{c.port}", "X-Container-Device": c.device,
                "X-Container-Partition": str(cpart)}

    if isinstance(body, bytes):
        async def one(i: int, dev: Any) -> Answer:
            h = {**node_headers(i), "Content-Length": str(len(body))}
            answer = await backend.call(dev, "PUT", part, names, h, body=body)
            while answer.status >= 500:
                spare = next((d for d in handoffs if not backend.limited(d)), None)
                if spare is None:
                    break
                answer = await backend.call(spare, "PUT", part, names, h, body=body)
            return answer

        answers = list(await asyncio.gather(*(one(i, d) for i, d in enumerate(targets))))
    else:
        answers = await _fan_out(proxy, part, names, targets, [node_headers(i) for i in range(len(targets))], body)
    status = write_status(answers, len(primaries))
    if status >= 300:
        if status == 409:
            return web.Response(status=202)
        return fail(status)
    etag = next(a.headers.get("ETag", "") for a in answers if a.status < 300)
    return web.Response(status=201, headers={"ETag": etag, "Last-Modified": http_date(headers["X-Timestamp"])})


async def _fan_out(proxy: Proxy, part: int, names: tuple[str, ...], targets: list[Any],
                   headers: list[dict[str, str]], body: AsyncIterator[bytes]) -> list[Answer]:
    """The body's pieces to every target as they come, in groups of about ``FAN_OUT_CHUNK`` bytes (one trip
    through each target's queue per group, no joined copy of the pieces). The targets served by this process
    share one MD5 of the body (``local.SharedDigest``) instead of hashing the same bytes once each."""
    queues: list[asyncio.Queue[list[bytes] | None]] = [asyncio.Queue(maxsize=FAN_OUT_QUEUE) for _ in targets]
    digest = SharedDigest()

    async def drain(q: asyncio.Queue[list[bytes] | None]) -> AsyncIterator[bytes]:
        while (group := await q.get()) is not None:
            for piece in group:
                yield piece

    tasks = [asyncio.ensure_future(proxy.backend.call(dev, "PUT", part, names, h, body=SharedBody(drain(q), digest)))
             for dev, h, q in zip(targets, headers, queues, strict=True)]

    def unblock(q: asyncio.Queue[list[bytes] | None]) -> None:
        # A target that failed reads no more: empty its queue so a put waiting on it goes through.
        while not q.empty():
            q.get_nowait()

    for t, q in zip(tasks, queues, strict=True):
        t.add_done_callback(lambda _t, q=q: unblock(q))  # type: ignore[misc]

    async def feed(item: list[bytes] | None) -> None:
        for q, t in zip(queues, tasks, strict=True):
            if not t.done():
                await q.put(item)
                if t.done():
                    unblock(q)

    try:
        group: list[bytes] = []
        held = 0
        async for chunk in body:
            if not chunk:
                continue
            group.append(chunk)
            held += len(chunk)
            if held >= FAN_OUT_CHUNK:
                await feed(group)
                group, held = [], 0
                if all(t.done() for t in tasks):
                    break
        if group:
            await feed(group)
        await feed(None)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return list(await asyncio.gather(*tasks))


async def read_body(request: web.Request, size: int | None, limit: int) -> bytes | AsyncIterator[bytes]:
    """The whole body when it is small, else an iterator that refuses to go past ``limit`` (413) or end short."""
    if size is not None and size <= SMALL:
        try:
            return await request.content.readexactly(size) if size else b""
        except asyncio.IncompleteReadError:
            raise status_error(499, "Client disconnected") from None
    return _chunks(request, size, limit)


async def _chunks(request: web.Request, size: int | None, limit: int) -> AsyncIterator[bytes]:
    """The body in the pieces it arrives in, refusing to go past ``limit`` (413) or to end short (499)."""
    total = 0
    async for chunk in _pieces(request.content):
        total += len(chunk)
        if total > limit:
            raise status_error(413, "Your request is too large.")
        yield chunk
    if size is not None and total != size:
        raise status_error(499, "Client disconnected")


async def _pieces(content: Any) -> AsyncIterator[bytes]:
    """A socket's body as aiohttp's ``iter_chunks`` gives it (as the socket handed it over; ``iter_any`` joins
    what is buffered, a copy of the body); an empty piece (the end of an HTTP chunk of a chunked body) is passed
    on and skipped by the fan-out. A middleware's sub-request body (``iter_any`` only) as it comes."""
    if isinstance(content, StreamReader):
        async for chunk, _ in content.iter_chunks():
            yield chunk
    else:
        async for chunk in content.iter_any():
            yield chunk


def timestamp() -> str:
    return now()
