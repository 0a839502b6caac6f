"""Static large objects (Swift's slo): ``PUT ?multipart-manifest=put`` stores a manifest of segments checked
one by one; a GET reads the segments joined (a Range across them), a HEAD shows the total size,
``?multipart-manifest=get`` the stored manifest and ``DELETE ?multipart-manifest=delete`` removes the segments
and the manifest with a bulk-delete style answer."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.object import httprange
from tinystack.object.common import now, status_error
from tinystack.object.middleware import slo_manifest as mf
from tinystack.object.middleware.segments import call, sub_request, write_range
from tinystack.object.request import PATH, SwiftPath, authorize

HIDDEN = ("content-length", "etag", "content-range", "accept-ranges")


def is_slo(response: web.StreamResponse) -> bool:
    return response.headers.get("X-Static-Large-Object", "").lower() in ("true", "1", "yes")


def make(proxy: Any, **_: Any) -> Any:
    async def put(request: web.Request, path: SwiftPath, handler: Handler) -> web.StreamResponse:
        await authorize(request, lambda: proxy.info.get(path.account, path.container or ""))
        size = proxy.ops.check_put(proxy, request, path)
        if size is not None and size > mf.MAX_MANIFEST_BYTES:
            raise status_error(413, "Manifest File > 8388608 bytes")
        body = await request.content.read(mf.MAX_MANIFEST_BYTES + 1)
        if len(body) > mf.MAX_MANIFEST_BYTES:
            raise status_error(413, "Manifest File > 8388608 bytes")
        segments = mf.parse_put(body)
        if (await proxy.info.get(path.account, path.container or ""))["status"] == 404:
            raise status_error(404, "The resource could not be found.")
        stored: list[dict[str, Any]] = []
        problems: list[str] = []
        for seg in segments:
            container, obj = mf.split_path(seg["path"])
            status, head = await call(handler, sub_request(request, "HEAD", SwiftPath(
                path.version, path.account, container, obj)))
            if head is None or status >= 300:
                problems.append(f"{seg['path']}, {status} {_reason(status)}")
                continue
            etag = head.headers.get("ETag", "").strip('"')
            length = int(head.headers.get("Content-Length", "0"))
            if is_slo(head):
                problems.append(f"{seg['path']}, Nested static large objects are not supported")
                continue
            if seg.get("etag") not in (None, "") and seg["etag"].strip('"') != etag:
                problems.append(f"{seg['path']}, Etag Mismatch")
            if seg.get("size_bytes") is not None and seg["size_bytes"] != length:
                problems.append(f"{seg['path']}, Size Mismatch")
            if length < 1:
                problems.append(f"{seg['path']}, Too small; each segment must be at least 1 byte.")
            entry: dict[str, Any] = {"name": "/" + container + "/" + obj, "hash": etag, "bytes": length,
                                     "content_type": head.headers.get("Content-Type", ""),
                                     "last_modified": head.headers.get("Last-Modified", "")}
            if seg.get("range"):
                if mf.parse_range(seg["range"], length) is None:
                    problems.append(f"{seg['path']}, Unsatisfiable Range")
                entry["range"] = seg["range"]
            stored.append(entry)
        if problems:
            raise status_error(400, "Errors:\n" + "\n".join(problems) + "\n")
        etag = mf.slo_etag(stored)
        wanted = request.headers.get("ETag", "").strip('"')
        if wanted and wanted != etag:
            raise status_error(422, "The ETag does not match the segments' ETags.")
        given = {k: v for k, v in request.headers.items() if k.lower() not in ("etag", "content-md5")}
        headers = proxy.ops.object_headers(given, now(), path.obj or "")
        headers["X-Static-Large-Object"] = "True"
        headers.pop("X-Object-Manifest", None)
        answer = await proxy.ops.store(proxy, path, headers, json.dumps(stored).encode())
        if answer.status == 201:
            answer.headers["ETag"] = f'"{etag}"'
        return answer

    async def manifest(request: web.Request, path: SwiftPath, handler: Handler) -> list[dict[str, Any]] | None:
        """The stored manifest of the object (None when it is not an SLO)."""
        # A HEAD first: the GET of a plain object streams its body to the client's own transport, so only a
        # manifest (small, never streamed) is fetched with GET.
        status, got = await call(handler, sub_request(request, "HEAD", path, "multipart-manifest=get"))
        if got is not None and not is_slo(got):
            return None
        if got is not None:
            status, got = await call(handler, sub_request(request, "GET", path, "multipart-manifest=get"))
        if got is None:
            if status == 404 and request.method == "DELETE":
                return None  # deleting what is not there: counted as not found
            raise status_error(status, _reason(status))
        if not is_slo(got) or not isinstance(got, web.Response) or got.body is None:
            return None
        return mf.load_stored(bytes(got.body))  # type: ignore[arg-type]

    async def read(request: web.Request, path: SwiftPath, first: web.StreamResponse,
                   stored: list[dict[str, Any]]) -> web.StreamResponse:
        total = mf.total_size(stored)
        headers = {k: v for k, v in first.headers.items() if k.lower() not in HIDDEN}
        headers["ETag"] = f'"{mf.slo_etag(stored)}"'
        headers["X-Static-Large-Object"] = "True"
        ranges = httprange.parse_ranges(request.headers.get("Range"), total) if total else None
        start, end, status = 0, total, 200
        if ranges is not None and len(ranges) == 1:
            (start, end), status = ranges[0], 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return web.Response(status=status, headers=headers)
        checked: set[str] = set()
        response = web.StreamResponse(status=status, headers=headers)
        offset = 0
        for seg in stored:
            lo_seg, hi_seg = mf.segment_span(seg)
            size = hi_seg - lo_seg
            lo, hi = max(start, offset), min(end, offset + size)
            base = offset
            offset += size
            if lo >= hi:
                continue
            container, obj = mf.split_path(seg["name"])
            target = SwiftPath(path.version, path.account, container, obj)
            if container not in checked:
                # The reader must be allowed to read every segment container, as with the manifest's own.
                await authorize(sub_request(request, "GET", target),
                                lambda c=container: proxy.info.get(path.account, c))  # type: ignore[misc]
                checked.add(container)
            if not response.prepared:
                await response.prepare(request)
            if not await write_range(proxy, response, target, lo_seg + lo - base, lo_seg + hi - base):
                break  # a segment gone: the client sees a short body (its length told it so)
        if not response.prepared:
            await response.prepare(request)
        await response.write_eof()
        return response

    async def delete(request: web.Request, path: SwiftPath, handler: Handler) -> web.StreamResponse:
        stored = await manifest(request, path, handler)
        targets = [SwiftPath(path.version, path.account, *mf.split_path(s["name"])) for s in stored or []]
        deleted = missing = 0
        problems: list[list[str]] = []
        for target in [*targets, path]:
            status, _ = await call(handler, sub_request(request, "DELETE", target))
            if status < 300:
                deleted += 1
            elif status == 404:
                missing += 1
            else:
                problems.append([f"/{target.container}/{target.obj}", f"{status} {_reason(status)}"])
        outcome = "400 Bad Request" if problems else "200 OK"
        as_json = "application/json" in request.headers.get("Accept", "")
        if as_json:
            body = json.dumps({"Number Deleted": deleted, "Number Not Found": missing, "Response Body": "",
                               "Response Status": outcome, "Errors": problems}).encode()
        else:
            body = (f"Number Deleted: {deleted}\nNumber Not Found: {missing}\nResponse Body: \n"
                    f"Response Status: {outcome}\nErrors:\n"
                    + "".join(f"{name}, {why}\n" for name, why in problems)).encode()
        response = web.StreamResponse(status=200, headers={
            "Content-Type": "application/json; charset=utf-8" if as_json else "text/plain; charset=utf-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    @web.middleware
    async def slo(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.get(PATH)
        if path is None or path.obj is None:
            return await handler(request)
        mode = request.query.get("multipart-manifest")
        if request.method == "PUT" and mode == "put":
            return await put(request, path, handler)
        if request.method == "DELETE" and mode == "delete":
            return await delete(request, path, handler)
        if request.method not in ("GET", "HEAD") or mode == "get":
            return await handler(request)
        first = await handler(request)
        if first.status == 416:
            # A Range past the manifest's own bytes: the object server refused it, but the SLO may cover it.
            _, head = await call(handler, sub_request(request, "HEAD", path))
            if head is not None and is_slo(head):
                first = head
        if not is_slo(first) or first.status not in (200, 206, 416):
            return first
        # The object server applied any Range to the manifest itself: read the manifest whole instead.
        stored = await manifest(request, path, handler)
        if stored is None:
            return first
        return await read(request, path, first, stored)

    return slo


def _reason(status: int) -> str:
    return {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            503: "Service Unavailable"}.get(status, "Error")
