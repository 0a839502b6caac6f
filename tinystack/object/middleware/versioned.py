"""Object versioning (Swift's versioned_writes): a container with ``X-Versions-Location`` (stack mode) or
``X-History-Location`` (history mode) naming another container keeps the object each PUT overwrites there, as
``<len(name) as 3 hex digits><name>/<timestamp>``. A DELETE in stack mode brings the newest kept version back
(and removes it from the archive); in history mode it archives the object and leaves a delete marker."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.object import constraints
from tinystack.object.common import now, status_error
from tinystack.object.middleware.segments import call, sub_request
from tinystack.object.request import PATH, SwiftPath, authorize

DELETE_MARKER = "application/x-deleted;swift_versions_deleted=1"


def archive_prefix(name: str) -> str:
    return f"{len(name.encode()):03x}{name}/"


def _bare(request: web.Request, method: str, path: SwiftPath) -> web.Request:
    """A sub-request without the client's headers, so a copy keeps the source's own metadata."""
    clone = request.clone(method=method, headers={})
    clone[PATH] = path
    return clone


def make(proxy: Any, **_: Any) -> Any:
    async def locations(path: SwiftPath) -> tuple[str, str]:
        info = await proxy.info.get(path.account, path.container or "")
        if info["status"] >= 300:
            return "", ""
        return unquote(info.get("versions", "")), unquote(info.get("history", ""))

    async def archive(request: web.Request, path: SwiftPath, handler: Handler, where: str) -> bool:
        """Copy the current object (if any) into the archive container; True when there was one."""
        status, head = await call(handler, sub_request(request, "HEAD", path, "multipart-manifest=get"))
        if head is None or status >= 300:
            return False
        ts = head.headers.get("X-Timestamp") or now()
        target = SwiftPath(path.version, path.account, where, archive_prefix(path.obj or "") + ts)
        copied = await proxy.ops.copy(proxy, _bare(request, "PUT", target), path, target)
        if copied.status >= 300:
            raise status_error(copied.status, "The previous version could not be kept.")
        return True

    async def newest_version(path: SwiftPath, where: str) -> str | None:
        answer = await proxy.backend.read("container", "GET", (path.account, where), {}, query={
            "prefix": archive_prefix(path.obj or ""), "reverse": "true", "limit": "1"})
        if answer.status >= 300:
            return None
        rows = [r for r in json.loads(answer.body) if "name" in r]
        return rows[0]["name"] if rows else None

    async def restore(request: web.Request, path: SwiftPath, handler: Handler, where: str) -> web.StreamResponse:
        name = await newest_version(path, where)
        if name is None:
            return await handler(request)
        source = SwiftPath(path.version, path.account, where, name)
        copied = await proxy.ops.copy(proxy, _bare(request, "PUT", path), source, path)
        if copied.status >= 300:
            return copied
        await call(handler, sub_request(request, "DELETE", source))
        return web.Response(status=204)

    async def history_delete(request: web.Request, path: SwiftPath, handler: Handler,
                             where: str) -> web.StreamResponse:
        await archive(request, path, handler, where)
        marker = SwiftPath(path.version, path.account, where, archive_prefix(path.obj or "") + now())
        await authorize(_bare(request, "PUT", marker), lambda: proxy.info.get(path.account, where))
        headers = proxy.ops.object_headers({"Content-Type": DELETE_MARKER}, now(), marker.obj or "")
        await proxy.ops.store(proxy, marker, headers, b"")
        return await handler(request)

    @web.middleware
    async def versioned(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.get(PATH)
        if path is None or path.container is None:
            return await handler(request)
        if path.obj is None:
            if request.method in ("PUT", "POST"):
                check_locations(request)
            return await handler(request)
        if request.method not in ("PUT", "DELETE") or request.query.get("multipart-manifest") == "delete":
            return await handler(request)
        stack, history = await locations(path)
        where = stack or history
        if not where or where == path.container:
            return await handler(request)
        if request.method == "PUT":
            await authorize(request, lambda: proxy.info.get(path.account, path.container or ""))
            await archive(request, path, handler, where)
            return await handler(request)
        await authorize(request, lambda: proxy.info.get(path.account, path.container or ""))
        if stack:
            return await restore(request, path, handler, where)
        return await history_delete(request, path, handler, where)

    return versioned


def check_locations(request: web.Request) -> None:
    """400 for both modes at once or a location that is not a container name."""
    stack = request.headers.get("X-Versions-Location")
    history = request.headers.get("X-History-Location")
    if stack and history:
        raise status_error(400, "Only one of X-Versions-Location or X-History-Location may be set.")
    for value in (stack, history):
        if value:
            name = unquote(value)
            if "/" in name.strip("/"):
                raise status_error(412, "Container name cannot contain slashes.")
            constraints.check_container_name(name.strip("/"))
