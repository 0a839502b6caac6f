"""Form uploads (Swift's formpost): a browser POSTs ``multipart/form-data`` to ``/v1/<account>/<container>[/
<prefix>]`` without a token; the form's ``redirect``, ``max_file_size``, ``max_file_count``, ``expires`` and
``signature`` fields (HMAC-SHA1/256/512 of ``path\\nredirect\\nmax_file_size\\nmax_file_count\\nexpires`` with
one of the account's or container's Temp-URL-Key(-2)) authorize storing each file field as
``<prefix><filename>``. Fields are read in order, so they come before the files. The answer is Swift's: the
last upload's status as text, or a 303 to ``redirect?status=...&message=...``; a bad signature or a past
``expires`` is 401 and a malformed form 400, with nothing stored."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import escape
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, MultipartReader, web

from tinystack.core.web import Handler
from tinystack.object.common import status_error
from tinystack.object.middleware import tempurl
from tinystack.object.middleware.segments import call, sub_request, with_body
from tinystack.object.request import AUTH, PATH, Auth, SwiftPath

MAX_VALUE_LENGTH = 4096  # a non-file field's value is cut there, as in Swift
CHUNK = 64 * 1024
DIGESTS = ("sha1", "sha256", "sha512")


class FormInvalid(Exception):
    """400 ``FormPost: <message>``."""


class FormUnauthorized(Exception):
    """401 ``FormPost: <Message Title-Cased>``."""


@dataclass
class Outcome:
    status: int = 0
    message: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


def _int(attributes: dict[str, str], name: str, error: str) -> int:
    try:
        return int(attributes.get(name) or 0)
    except ValueError:
        raise FormInvalid(error) from None


def hmac_body(path: str, attributes: dict[str, str]) -> str:
    return "\n".join((path, attributes.get("redirect") or "", attributes.get("max_file_size") or "0",
                      attributes.get("max_file_count") or "0", attributes.get("expires") or "0"))


def check_signature(path: str, attributes: dict[str, str], keys: list[str]) -> None:
    """Raises FormUnauthorized unless the form is unexpired and signed with one of ``keys``."""
    if not keys:
        raise FormUnauthorized("invalid signature")
    if _int(attributes, "expires", "expired not an integer") < time.time():
        raise FormUnauthorized("form expired")
    try:
        alg, given = tempurl.parse_sig(attributes.get("signature", ""))
    except Exception:
        raise FormUnauthorized("invalid signature") from None
    if alg not in DIGESTS:
        raise FormUnauthorized("invalid signature")
    body = hmac_body(path, attributes)
    if not any(hmac.compare_digest(hmac.new(k.encode(), body.encode(), tempurl.DIGESTS[alg]).digest(), given)
               for k in keys):
        raise FormUnauthorized("invalid signature")


def target_path(path: SwiftPath, filename: str) -> SwiftPath:
    """Where a file goes: the form's container, its object part (if any) being a prefix of the name."""
    return SwiftPath(path.version, path.account, path.container, (path.obj or "") + filename)


async def _capped(part: BodyPartReader, limit: int) -> AsyncIterator[bytes]:
    total = 0
    while chunk := await part.read_chunk(CHUNK):
        total += len(chunk)
        if total > limit:
            raise FormInvalid("max_file_size exceeded")
        yield chunk


async def _value(part: BodyPartReader) -> str:
    data = b""
    while chunk := await part.read_chunk(CHUNK):
        if len(data) < MAX_VALUE_LENGTH:
            data += chunk[:MAX_VALUE_LENGTH - len(data)]
    return data.decode("utf-8", errors="replace")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def make(proxy: Any, **_: Any) -> Any:
    async def upload(request: web.Request, path: SwiftPath, handler: Handler, reader: MultipartReader) -> Outcome:
        out = Outcome()
        attributes = out.attributes
        files = 0
        while True:
            try:
                part = await reader.next()
            except ValueError:  # aiohttp's word for a body that does not follow the boundary
                raise FormInvalid("invalid starting boundary") from None
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise FormInvalid("nested multipart is not supported")
            if not part.filename:
                if part.name:
                    attributes[part.name.lower()] = (await _value(part)).rstrip("\r\n-")
                else:
                    await part.release()
                continue
            files += 1
            if files > _int(attributes, "max_file_count", "max_file_count not an integer"):
                out.status, out.message = 400, "max file count exceeded"
                break
            status = await store(request, path, handler, part, attributes)
            out.status = status
            if status >= 300:
                break
        if not out.status:
            out.status, out.message = 400, "no files to process"
        return out

    async def store(request: web.Request, path: SwiftPath, handler: Handler, part: BodyPartReader,
                    attributes: dict[str, str]) -> int:
        keys = await tempurl.signing_keys(proxy, path.account, path.container or "")
        if not keys:
            raise FormUnauthorized("invalid signature")
        max_size = _int(attributes, "max_file_size", "max_file_size not an integer")
        headers = {"Transfer-Encoding": "chunked"}
        if "x_delete_at" in attributes:
            _int(attributes, "x_delete_at", "x_delete_at not an integer: Unix timestamp required.")
            headers["X-Delete-At"] = attributes["x_delete_at"]
        if "x_delete_after" in attributes:
            _int(attributes, "x_delete_after", "x_delete_after not an integer: Number of seconds required.")
            headers["X-Delete-After"] = attributes["x_delete_after"]
        content_type = attributes.get("content-type") or part.headers.get("Content-Type")
        if content_type:
            headers["Content-Type"] = content_type
        if "content-encoding" in attributes or "Content-Encoding" in part.headers:
            headers["Content-Encoding"] = attributes.get("content-encoding") or part.headers["Content-Encoding"]
        check_signature(request.path, attributes, keys)
        target = target_path(path, part.filename or "filename")
        sub = with_body(sub_request(request, "PUT", target, headers=headers), _capped(part, max_size))
        sub[AUTH] = Auth(None, tempurl.allow_account(path.account), {"formpost": True})
        status, _ = await call(handler, sub)
        return status

    def answer(out: Outcome) -> web.Response:
        redirect = out.attributes.get("redirect")
        status_line = f"{out.status} {_reason(out.status)}"
        if not redirect:
            body = status_line + (f"\r\nFormPost: {out.message.title()}" if out.message else "")
            return web.Response(status=out.status, text=body, content_type="text/plain")
        location = (redirect + ("&" if "?" in redirect else "?")
                    + f"status={quote(str(out.status))}&message={quote(out.message)}")
        body = f'<html><body><p><a href="{escape(location)}">Click to continue...</a></p></body></html>'
        return web.Response(status=303, text=body, content_type="text/html", headers={"Location": location})

    @web.middleware
    async def formpost(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.get(PATH)
        if (path is None or path.container is None or request.method != "POST"
                or request.content_type != "multipart/form-data"):
            return await handler(request)
        try:
            if "boundary" not in request.headers.get("Content-Type", ""):
                raise FormInvalid("no boundary")
            try:
                reader = await request.multipart()
            except (ValueError, AssertionError):
                raise FormInvalid("invalid starting boundary") from None
            out = await upload(request, path, handler, reader)
        except FormInvalid as err:
            raise status_error(400, f"FormPost: {err}") from None
        except FormUnauthorized as err:
            raise status_error(401, f"FormPost: {str(err).title()}") from None
        return answer(out)

    return formpost
