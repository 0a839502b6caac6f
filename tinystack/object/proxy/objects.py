"""The object controller: GET/HEAD (the first replica that has it; X-Newest asks them all), PUT (objects_put.py),
COPY and X-Copy-From, POST (metadata) and DELETE."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from tinystack.object import constraints
from tinystack.object.common import now, status_error
from tinystack.object.proxy import objects_put
from tinystack.object.proxy.backend import Opened, write_status
from tinystack.object.proxy.common import Proxy, client_headers, fail, object_policy
from tinystack.object.request import SwiftPath, authorize, swift_path

FORWARD = ("range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


def _with_last(devices: Iterator[Any]) -> Iterator[tuple[Any, bool]]:
    """Each device, and whether it is the last one (known by looking one ahead)."""
    dev = next(devices, None)
    while dev is not None:
        following = next(devices, None)
        yield dev, following is None
        dev = following


def _container_getter(proxy: Proxy, path: SwiftPath) -> Any:
    return lambda: proxy.info.get(path.account, path.container or "")


async def _open(proxy: Proxy, path: SwiftPath, method: str, headers: dict[str, str],
                newest: bool) -> tuple[int, dict[str, str], Opened | None]:
    """The first replica that answers (or, with ``newest``, the one with the newest timestamp)."""
    backend = proxy.backend
    policy, named = await object_policy(proxy, path.account, path.container or "")
    headers = {**headers, **named}
    part, primaries, handoffs = backend.nodes(policy.ring, *path.names)
    # The handoffs are worked out only when a read gets that far (seeding and shuffling them cost a GET as much
    # as its ring lookup), not for every read that its first primary answers.
    candidates = itertools.chain(primaries, itertools.islice(handoffs, len(primaries)))
    statuses: list[int] = []
    best: Opened | None = None
    for dev, last in _with_last(candidates):
        if backend.limited(dev) and not last:
            continue
        resp = await backend.open(dev, method, part, path.names, headers)
        if resp is None:
            statuses.append(503)
            continue
        if resp.status in (404, 507) or resp.status >= 500:
            statuses.append(resp.status)
            if resp.status == 404 and resp.headers.get("X-Backend-Timestamp") and newest:
                statuses.append(404)
            resp.release()
            continue
        if not newest:
            return resp.status, {}, resp
        if best is None or resp.headers.get("X-Backend-Timestamp", "") > best.headers.get("X-Backend-Timestamp", ""):
            if best is not None:
                best.release()
            best = resp
        else:
            resp.release()
    if best is not None:
        return best.status, {}, best
    return (404 if 404 in statuses else 503), {}, None


async def get(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    await authorize(request, _container_getter(proxy, path))
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARD}
    newest = request.headers.get("X-Newest", "").lower() in ("true", "1", "yes")
    status, _, resp = await _open(proxy, path, request.method, headers, newest)
    if resp is None:
        return fail(status)
    try:
        out = client_headers(resp.headers, keep_length=True)
        if status in (304, 412):
            return web.Response(status=status, headers={k: v for k, v in out.items() if k.lower() != "content-length"})
        length = int(resp.headers.get("Content-Length", "0"))
        if request.method == "HEAD" or length <= objects_put.SMALL:
            body = await resp.read() if request.method != "HEAD" else b""
            # A HEAD keeps the backend's Content-Length (aiohttp sends no body for it).
            return web.Response(status=status, body=body, headers=out)
        streamed = web.StreamResponse(status=status, headers=out)
        await streamed.prepare(request)
        async for chunk in resp.content.iter_any():
            await streamed.write(chunk)
        await streamed.write_eof()
        return streamed
    finally:
        resp.release()


async def put(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    await authorize(request, _container_getter(proxy, path))
    size = objects_put.check_put(proxy, request, path)
    info = await proxy.info.get(path.account, path.container or "")
    if info["status"] == 404:
        return fail(404)
    source = request.headers.get("X-Copy-From")
    if source is not None:
        if size:
            raise status_error(400, "Copy requests require a zero byte body")
        return await copy(proxy, request, _split_source(source, path.account), path)
    if_none = request.headers.get("If-None-Match")
    if if_none is not None:
        # Only "*" (do not overwrite) means something on a PUT.
        if if_none.strip() != "*":
            raise status_error(400, "If-None-Match only supports *")
        _, _, existing = await _open(proxy, path, "HEAD", {}, newest=True)
        if existing is not None:
            existing.release()
            return fail(412)
    ts = now()
    headers = objects_put.object_headers(request.headers, ts, path.obj or "")
    body = await objects_put.read_body(request, size, proxy.settings.max_file_size)
    return await objects_put.store(proxy, path, headers, body)


def _split_source(source: str, account: str) -> SwiftPath:
    container, _, obj = unquote(source).lstrip("/").partition("/")
    if not container or not obj:
        raise status_error(412, "X-Copy-From header must be of the form <container name>/<object name>")
    return SwiftPath("v1", account, container, obj)


async def copy_method(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    """COPY /a/c/o with Destination: c2/o2 (and Destination-Account): a PUT of the destination from the source."""
    path = swift_path(request)
    destination = request.headers.get("Destination")
    if not destination:
        raise status_error(412, "Destination header required")
    dest = _split_source(destination, request.headers.get("Destination-Account", path.account))
    info = await proxy.info.get(dest.account, dest.container or "")
    if info["status"] == 404:
        return fail(404)
    return await copy(proxy, request, path, dest)


async def copy(proxy: Proxy, request: web.Request, source: SwiftPath, dest: SwiftPath) -> web.StreamResponse:
    """Read ``source`` (the caller must be allowed to read it) and store it at ``dest`` with its metadata, updated
    by the request's unless X-Fresh-Metadata."""
    from tinystack.object.request import AUTH

    await request[AUTH].authorize(_as_path(request, source), _container_getter(proxy, source))
    await request[AUTH].authorize(_as_path(request, dest), _container_getter(proxy, dest))
    assert dest.obj is not None
    constraints.check_object_name(dest.obj)
    constraints.check_metadata(request.headers, "object")
    status, _, resp = await _open(proxy, source, "GET", {}, newest=False)
    if resp is None:
        return fail(status)
    try:
        if status != 200:
            return fail(status)
        src = resp.headers
        ts = now()
        fresh = request.headers.get("X-Fresh-Metadata", "").lower() in ("true", "1", "yes")
        base = {} if fresh else {k: v for k, v in src.items()
                                 if k.lower().startswith("x-object-meta-") or k.lower() in objects_put.KEPT}
        base.setdefault("Content-Type", src.get("Content-Type", "application/octet-stream"))
        merged: dict[str, str] = {**base}
        for key, value in request.headers.items():
            low = key.lower()
            if low == "content-type" and not value:
                continue  # swiftclient sends an empty one: the source's stays
            if low.startswith("x-object-meta-") or low in objects_put.KEPT:
                merged = {k: v for k, v in merged.items() if k.lower() != low}
                merged[key] = value
        if int(src.get("Content-Length", "0")) > proxy.settings.max_file_size:
            return fail(413)
        headers = objects_put.object_headers(merged, ts, dest.obj)
        headers["Content-Type"] = merged.get("Content-Type") or src.get("Content-Type") or "application/octet-stream"
        headers["ETag"] = src.get("ETag", "").strip('"')
        length = int(src.get("Content-Length", "0"))
        body: Any = await resp.read() if length <= objects_put.SMALL else resp.content.iter_chunked(objects_put.CHUNK)
        answer = await objects_put.store(proxy, dest, headers, body)
    finally:
        resp.release()
    if answer.status == 201:
        answer.headers["X-Copied-From"] = quote(f"{source.container}/{source.obj}")
        if source.account != dest.account:
            answer.headers["X-Copied-From-Account"] = quote(source.account)
        answer.headers["X-Copied-From-Last-Modified"] = src.get("Last-Modified", "")
    return answer


def _as_path(request: web.Request, target: SwiftPath) -> web.Request:
    from tinystack.object.request import PATH

    clone = request.clone()
    clone[PATH] = target
    return clone


async def post(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    await authorize(request, _container_getter(proxy, path))
    constraints.check_metadata(request.headers, "object")
    ts = now()
    headers = {"X-Timestamp": ts}
    for key, value in request.headers.items():
        low = key.lower()
        if (low.startswith("x-object-meta-") or low in objects_put.KEPT) and (value or low != "content-type"):
            headers[key] = value
    delete_at = constraints.check_delete_headers(request.headers, float(ts))
    headers.pop("X-Delete-After", None)
    if delete_at is not None:
        headers["X-Delete-At"] = str(delete_at)
    cpart, cnodes, _ = proxy.backend.nodes("container", path.account, path.container)
    per_node = [{"X-Container-Host": f"{c.ip}:{c.port}", "X-Container-Device": c.device,
                 "X-Container-Partition": str(cpart)} for c in cnodes]
    policy, named = await object_policy(proxy, path.account, path.container or "")
    answers = await proxy.backend.write(policy.ring, "POST", path.names, {**headers, **named}, per_node)
    status = write_status(answers, len(answers))
    return web.Response(status=202) if status < 300 else fail(status)


async def delete(proxy: Proxy, request: web.Request) -> web.StreamResponse:
    path = swift_path(request)
    await authorize(request, _container_getter(proxy, path))
    info = await proxy.info.get(path.account, path.container or "")
    if info["status"] == 404:
        return fail(404)
    cpart, cnodes, _ = proxy.backend.nodes("container", path.account, path.container)
    per_node = [{"X-Container-Host": f"{c.ip}:{c.port}", "X-Container-Device": c.device,
                 "X-Container-Partition": str(cpart)} for c in cnodes]
    headers = {"X-Timestamp": now()}
    if "X-If-Delete-At" in request.headers:
        headers["X-If-Delete-At"] = request.headers["X-If-Delete-At"]
    policy, named = await object_policy(proxy, path.account, path.container or "")
    answers = await proxy.backend.write(policy.ring, "DELETE", path.names, {**headers, **named}, per_node)
    statuses = [a.status for a in answers]
    if any(s == 204 for s in statuses) and sum(1 for s in statuses if s in (204, 404)) >= len(statuses) // 2 + 1:
        return web.Response(status=204)
    status = write_status(answers, len(answers))
    return web.Response(status=204) if status < 300 else fail(status)


