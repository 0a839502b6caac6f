"""Bulk operations (Swift's bulk): ``POST|DELETE ?bulk-delete`` with a body of URL-encoded ``/container[/object]``
names, one a line, deletes them all; ``PUT ?extract-archive=tar|tar.gz|tar.bz2`` stores each file of the archive
as ``<container>/<object>`` (under the request's container and prefix, if any), creating containers as needed.
Every delete and upload is a sub-request through the rest of the pipeline with the caller's identity, so ACLs
and quotas apply to each. The answer is 200 with Swift's summary body (text, JSON or XML by ``Accept``) whose
``Response Status`` tells the outcome."""

from __future__ import annotations

import asyncio
import json
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator, Awaitable
from typing import IO, Any, Literal
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.object import constraints
from tinystack.object.middleware.segments import call, sub_request, with_body
from tinystack.object.request import PATH, SwiftPath

MAX_DELETES_PER_REQUEST = 10000
MAX_FAILED_DELETES = 1000
MAX_CONTAINERS_PER_EXTRACTION = 10000
MAX_FAILED_EXTRACTIONS = 1000
MAX_PATH_LENGTH = constraints.MAX_CONTAINER_NAME_LENGTH + constraints.MAX_OBJECT_NAME_LENGTH + 2
DELETE_CONCURRENCY = 8
EXTRACT_CONCURRENCY = 8
SMALL_MEMBER = 1024 * 1024  # archive members up to this size are read whole and stored concurrently
YIELD_FREQUENCY = 10.0  # seconds of work before the answer starts with whitespace (Swift's default)
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
FORMATS = ("text/plain", "application/json", "application/xml", "text/xml")
ArchiveMode = Literal["r|", "r|gz", "r|bz2"]
ARCHIVES: dict[str, ArchiveMode] = {"tar": "r|", "tar.gz": "r|gz", "tar.bz2": "r|bz2"}
CHUNK = 64 * 1024
# pax headers an archive may carry for a file's metadata (GNU tar and bsdtar spell xattrs differently).
PAX_META = ("SCHILY.xattr.user.meta.", "LIBARCHIVE.xattr.user.meta.")
PAX_MIME = ("SCHILY.xattr.user.mime_type", "LIBARCHIVE.xattr.user.mime_type")

INFO = {"bulk_delete": {"max_deletes_per_request": MAX_DELETES_PER_REQUEST,
                        "max_failed_deletes": MAX_FAILED_DELETES},
        "bulk_upload": {"max_containers_per_extraction": MAX_CONTAINERS_PER_EXTRACTION,
                        "max_failed_extractions": MAX_FAILED_EXTRACTIONS}}

STATUS_LINES = {200: "200 OK", 201: "201 Created", 400: "400 Bad Request", 401: "401 Unauthorized",
                403: "403 Forbidden", 404: "404 Not Found", 406: "406 Not Acceptable", 409: "409 Conflict",
                411: "411 Length Required", 412: "412 Precondition Failed", 413: "413 Request Entity Too Large",
                422: "422 Unprocessable Entity", 499: "499 Client Disconnect", 502: "502 Bad Gateway",
                503: "503 Service Unavailable", 507: "507 Insufficient Storage"}


class Abort(Exception):
    """Ends a bulk request early: its status and the message the summary's ``Response Body`` shows."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_line(status: int) -> str:
    return STATUS_LINES.get(status, f"{status} Error")


def out_format(accept: str | None) -> str | None:
    """The body format by ``Accept`` (text by default); None when the client accepts none of them."""
    if not accept:
        return "text/plain"
    best: tuple[float, int, int] | None = None
    choice = None
    for item in accept.split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        for order, fmt in enumerate(FORMATS):
            if q > 0 and kind in (fmt, fmt.split("/")[0] + "/*", "*/*"):
                # Exact types beat wildcards at the same q; then the order of FORMATS.
                rank = (q, 1 if kind == fmt else 0, -order)
                if best is None or rank > best:
                    best, choice = rank, fmt
    return choice


def summary(fmt: str | None, data: dict[str, Any], errors: list[list[str]], root: str) -> bytes:
    """Swift's bulk answer body: ``Key: value`` lines then ``Errors:``, or JSON, or XML under ``root``."""
    if fmt == "application/json":
        return json.dumps({**data, "Errors": errors}).encode()
    if fmt is not None and fmt.endswith("/xml"):
        out = [f"<{root}>\n"]
        for key in sorted(data):
            tag = key.replace(" ", "_").lower()
            out.append(f"<{tag}>{escape(str(data[key]))}</{tag}>\n")
        out.append("<errors>\n")
        out.extend(f"<object><name>{escape(n)}</name><status>{escape(s)}</status></object>\n" for n, s in errors)
        out.append(f"</errors>\n</{root}>\n")
        return "".join(out).encode()
    lines = [f"{key}: {data[key]}\n" for key in sorted(data)]
    lines.append("Errors:\n")
    lines.extend(f"{n}, {s}\n" for n, s in errors)
    return "".join(lines).encode()


def split_name(account_path: SwiftPath, name: str) -> SwiftPath:
    """``/container[/object]`` (relative to the account) as a path; ValueError when there is no container."""
    container, _, obj = name.lstrip("/").partition("/")
    if not container:
        raise ValueError(name)
    return SwiftPath(account_path.version, account_path.account, container, obj or None)


def valid_utf8(name: str) -> bool:
    if "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def read_names(request: web.Request) -> list[str]:
    """The names of a bulk delete (unquoted); 400 for a line too long, 413 for too many."""
    names: list[str] = []
    pending = b""
    async for chunk in request.content.iter_any():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            _add_name(names, line)
        if len(pending) > MAX_PATH_LENGTH * 3:  # quoted, a name may take three bytes per character
            raise Abort(400, "Invalid File Name")
    _add_name(names, pending)
    return names


def _add_name(names: list[str], line: bytes) -> None:
    text = line.strip()
    if not text:
        return
    name = unquote(text.decode("utf-8", errors="surrogateescape"), errors="surrogateescape")
    if len(name.encode("utf-8", errors="surrogateescape")) > MAX_PATH_LENGTH:
        raise Abort(400, "Invalid File Name")
    names.append(name)
    if len(names) > MAX_DELETES_PER_REQUEST:
        raise Abort(413, f"Maximum Bulk Deletes: {MAX_DELETES_PER_REQUEST} per request")


def pax_headers(info: tarfile.TarInfo) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in info.pax_headers.items():
        if key in PAX_MIME:
            out["Content-Type"] = value
        for prefix in PAX_META:
            if key.startswith(prefix) and len(key) > len(prefix):
                out["X-Object-Meta-" + key[len(prefix):]] = value
    return out


def _read_member(archive: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    source = archive.extractfile(info)
    return source.read() if source is not None else b""


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def make(proxy: Any, **_: Any) -> Any:
    async def delete_one(request: web.Request, handler: Handler, base: SwiftPath, name: str,
                         data: dict[str, Any], errors: list[list[str]], bad: list[int]) -> int:
        """Deletes one name; returns its status (409 on a container is retried by the caller)."""
        if not valid_utf8(name):
            errors.append([quote(name, errors="surrogateescape"), status_line(412)])
            return 412
        try:
            target = split_name(base, name)
        except ValueError:
            errors.append([quote(name), status_line(400)])
            return 400
        status, _ = await call(handler, sub_request(request, "DELETE", target))
        if status < 300:
            data["Number Deleted"] += 1
        elif status == 404:
            data["Number Not Found"] += 1
        elif status == 409 and target.obj is None:
            return 409
        else:
            if status >= 500:
                bad[0] = 502
            errors.append([quote(name), status_line(status)])
        if len(errors) >= MAX_FAILED_DELETES:
            raise Abort(400, "Max delete failures exceeded")
        return status

    async def bulk_delete(request: web.Request, path: SwiftPath, handler: Handler, fmt: str | None) -> bytes:
        data: dict[str, Any] = {"Number Deleted": 0, "Number Not Found": 0, "Response Body": "",
                                "Response Status": status_line(200)}
        errors: list[list[str]] = []
        bad = [400]
        try:
            if fmt is None:
                raise Abort(406, "")
            given = request.headers.get("Content-Type")
            if given and not given.startswith("text/plain"):
                raise Abort(406, "")  # only newline-separated names are understood
            if request.content_length is None and request.headers.get("Transfer-Encoding", "").lower() != "chunked":
                raise Abort(411, "")
            names = await read_names(request)

            async def one(name: str) -> tuple[str, int]:
                return name, await delete_one(request, handler, path, name, data, errors, bad)

            # A few at a time (a failure limit stops the rest); containers that were not yet empty again after.
            results: list[tuple[str, int]] = []
            for start in range(0, len(names), DELETE_CONCURRENCY):
                batch = names[start:start + DELETE_CONCURRENCY]
                results.extend(await asyncio.gather(*(one(n) for n in batch)))
            for name, status in results:
                if status == 409:
                    again = await delete_one(request, handler, path, name, data, errors, bad)
                    if again == 409:
                        errors.append([quote(name), status_line(409)])
            if errors:
                data["Response Status"] = status_line(bad[0])
            elif not (data["Number Deleted"] or data["Number Not Found"]):
                data["Response Status"] = status_line(400)
                data["Response Body"] = "Invalid bulk delete."
        except Abort as err:
            data["Response Status"] = status_line(err.status)
            data["Response Body"] = str(err)
        return summary(fmt, data, errors, "delete")

    async def quota_applies(account: str, container: str) -> bool:
        acc = await proxy.info.get(account)
        if acc["status"] < 300 and acc["meta"].get("quota-bytes"):
            return True
        cont = await proxy.info.get(account, container)
        return cont["status"] < 300 and any(cont["meta"].get(k) for k in ("quota-bytes", "quota-count"))

    async def spool(request: web.Request) -> IO[bytes]:
        """The archive in a temporary file (tarfile reads synchronously; the upload must not block the loop)."""
        out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the caller
        total = 0
        try:
            async for chunk in request.content.iter_any():
                total += len(chunk)
                if total > proxy.settings.max_file_size:
                    raise Abort(413, "Your request is too large.")
                await asyncio.to_thread(out.write, chunk)
            out.seek(0)
        except BaseException:
            out.close()
            raise
        return out

    async def member(archive: tarfile.TarFile, info: tarfile.TarInfo) -> AsyncIterator[bytes]:
        source = archive.extractfile(info)
        if source is None:
            return
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk

    async def ensure_container(request: web.Request, handler: Handler, target: SwiftPath) -> int:
        status, _ = await call(handler, sub_request(request, "HEAD", target, headers={}))
        if status == 404:
            status, _ = await call(handler, sub_request(request, "PUT", target, headers={}))
        return status

    async def extract(request: web.Request, path: SwiftPath, handler: Handler, fmt: str | None,
                      compression: ArchiveMode) -> bytes:
        data: dict[str, Any] = {"Number Files Created": 0, "Response Body": "", "Response Status": status_line(201)}
        errors: list[list[str]] = []
        failed_type = 400
        base = "/".join(p for p in (path.container, path.obj) if p).rstrip("/")
        # Headers each extracted object takes from the archive's request, as in Swift.
        given = {k: v for k, v in request.headers.items()
                 if k.lower() in ("x-delete-at", "x-delete-after") or k.lower().startswith("x-object-meta-")}
        archive_file: IO[bytes] | None = None
        gate = asyncio.Semaphore(EXTRACT_CONCURRENCY)
        pending: set[asyncio.Task[None]] = set()
        aborted: list[Abort] = []
        containers: set[str] = set()

        async def store(sub: web.Request, body: AsyncIterator[bytes] | None, container: str, short: str,
                        container_failure: list[str] | None) -> None:
            nonlocal failed_type
            status, _ = await call(handler, with_body(sub, body) if body is not None else sub)
            if status < 300:
                containers.add(container)
                data["Number Files Created"] += 1
                return
            if container_failure:
                errors.append(container_failure)
            errors.append([short, status_line(status)])
            if status == 401:
                aborted.append(Abort(401, ""))
            if status >= 500:
                failed_type = 502

        try:
            if fmt is None:
                raise Abort(406, "")
            archive_file = await spool(request)
            opened = archive_file
            archive = await asyncio.to_thread(lambda: tarfile.open(mode=compression, fileobj=opened))  # noqa: SIM115 - the spooled file is closed below
            entries = iter(archive)
            while (info := await asyncio.to_thread(next, entries, None)) is not None:
                if len(errors) >= MAX_FAILED_EXTRACTIONS:
                    break
                if not info.isfile():
                    continue
                name = info.name[2:] if info.name.startswith("./") else info.name
                name = name.lstrip("/")
                if base:
                    name = base + "/" + name
                if "/" not in name:
                    continue  # a file at the top of an archive sent to the account has no container
                short = quote(name[:MAX_PATH_LENGTH], errors="surrogateescape")
                if not valid_utf8(name):
                    errors.append([short, status_line(412)])
                    continue
                if info.size > proxy.settings.max_file_size:
                    errors.append([short, status_line(413)])
                    continue
                container, obj = name.split("/", 1)
                target = SwiftPath(path.version, path.account, container, obj)
                container_failure: list[str] | None = None
                if container not in containers:
                    try:
                        constraints.check_container_name(container)
                    except Exception:
                        errors.append([short, status_line(400)])
                        continue
                    status = await ensure_container(request, handler, SwiftPath(path.version, path.account,
                                                                                  container))
                    if status == 401:
                        raise Abort(401, "")
                    if status < 300:
                        containers.add(container)
                        if len(containers) > MAX_CONTAINERS_PER_EXTRACTION:
                            raise Abort(400, f"More than {MAX_CONTAINERS_PER_EXTRACTION} containers to create "
                                             "from tar.")
                    else:
                        # An ACL may still let the caller write into a container it could not create.
                        container_failure = [quote(f"/{path.version}/{path.account}/{container}"),
                                             status_line(status)]
                headers = {**given, "Content-Length": str(info.size), **pax_headers(info)}
                if info.size <= SMALL_MEMBER and not await quota_applies(path.account, container):
                    # Read now (the archive is a stream) and stored beside the next ones, a few at a time.
                    body = await asyncio.to_thread(_read_member, archive, info)
                    await gate.acquire()
                    task = asyncio.ensure_future(store(sub_request(request, "PUT", target, headers=headers),
                                                       _once(body), container, short, container_failure))
                    task.add_done_callback(lambda _t: gate.release())
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                else:
                    # A large member streams from the archive; under a quota (it counts what is stored) the uploads
                    # go one after the other, as all of Swift's do.
                    await asyncio.gather(*pending)
                    await store(with_body(sub_request(request, "PUT", target, headers=headers),
                                          member(archive, info)), None, container, short, container_failure)
                if aborted:
                    raise aborted[0]
            await asyncio.gather(*pending)
            if aborted:
                raise aborted[0]
            if errors:
                data["Response Status"] = status_line(failed_type)
            elif not data["Number Files Created"]:
                data["Response Status"] = status_line(400)
                data["Response Body"] = "Invalid Tar File: No Valid Files"
        except Abort as err:
            await asyncio.gather(*pending, return_exceptions=True)  # what was sent is counted
            data["Response Status"] = status_line(err.status)
            data["Response Body"] = str(err)
        except (tarfile.TarError, zlib.error, EOFError, OSError) as err:
            await asyncio.gather(*pending, return_exceptions=True)
            data["Response Status"] = status_line(400)
            data["Response Body"] = f"Invalid Tar File: {err}"
        finally:
            for task in pending:  # left only when this request itself was cancelled
                task.cancel()
            if archive_file is not None:
                archive_file.close()
        return summary(fmt, data, errors, "extract")

    async def respond(request: web.Request, fmt: str | None, work: Awaitable[bytes]) -> web.StreamResponse:
        """200 with the summary; when the work takes long, the answer starts at once and a space goes out every
        ``YIELD_FREQUENCY`` seconds (then a blank line before the summary), so no client or balancer times out."""
        declaration = XML_DECLARATION if fmt is not None and fmt.endswith("/xml") else b""
        task = asyncio.ensure_future(work)
        response: web.StreamResponse | None = None
        try:
            while not (await asyncio.wait({task}, timeout=YIELD_FREQUENCY))[0]:
                if response is None:
                    response = web.StreamResponse(status=200)
                    response.content_type, response.charset = fmt or "text/plain", "utf-8"
                    response.enable_chunked_encoding()
                    await response.prepare(request)
                    await response.write(declaration)
                await response.write(b" ")
            body = task.result()
        finally:
            if not task.done():
                task.cancel()  # the client went away: stop the deletes or the uploads
        if response is None:
            return web.Response(status=200, body=declaration + body, content_type=fmt or "text/plain", charset="utf-8")
        await response.write(b"\r\n\r\n" + body)
        await response.write_eof()
        return response

    @web.middleware
    async def bulk(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.get(PATH)
        if path is None:
            return await handler(request)
        query = request.query
        if "bulk-delete" in query and request.method in ("POST", "DELETE"):
            fmt = out_format(request.headers.get("Accept"))
            return await respond(request, fmt, bulk_delete(request, path, handler, fmt))
        if "extract-archive" in query and request.method == "PUT":
            compression = ARCHIVES.get(query["extract-archive"].lower().strip("."))
            if compression is None:
                return web.Response(status=400, text="Unsupported archive format", content_type="text/plain")
            fmt = out_format(request.headers.get("Accept"))
            return await respond(request, fmt, extract(request, path, handler, fmt, compression))
        return await handler(request)

    return bulk
