"""Temporary URLs (Swift's tempurl): ``?temp_url_sig=...&temp_url_expires=...`` lets a request without a token
act on one object (or every object under ``temp_url_prefix``) until the expiry, signed with HMAC (SHA1,
SHA256 or SHA512; hex, or ``<alg>:<base64url>``) by one of the account's or container's ``Temp-URL-Key(-2)``.
A request with those parameters but a wrong signature or a past expiry gets 401 and reaches nothing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.object.common import status_error
from tinystack.object.request import AUTH, PATH, Auth, InfoGetter

METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
HEX_LENGTHS = {40: "sha1", 64: "sha256", 128: "sha512"}
KEYS = ("temp-url-key", "temp-url-key-2")


def _invalid() -> Exception:
    return status_error(401, "Temp URL invalid")


def parse_expires(text: str) -> int:
    """Unix seconds, or ISO 8601 in UTC (``2030-01-02T03:04:05Z``)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    except ValueError:
        raise _invalid() from None


def parse_sig(sig: str) -> tuple[str, bytes]:
    """The digest name and the raw signature."""
    if ":" in sig:
        alg, _, encoded = sig.partition(":")
        if alg not in DIGESTS:
            raise _invalid()
        try:
            return alg, base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise _invalid() from None
    alg = HEX_LENGTHS.get(len(sig), "")
    try:
        return alg, bytes.fromhex(sig) if alg else b""
    except ValueError:
        raise _invalid() from None


def signature(key: str, alg: str, method: str, expires: str, path: str) -> bytes:
    return hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), DIGESTS[alg]).digest()


def allow_account(account: str) -> Any:
    """An ``Auth.authorize`` that lets a signed request (tempurl, formpost) act within ``account`` only."""
    async def authorize(request: web.Request, _info: InfoGetter | None) -> None:
        # The signature covered the client's request; what the proxy does for it (segments, archives) stays
        # in the signer's account.
        if request[PATH].account != account:
            raise status_error(401, "Temp URL invalid")
    return authorize


async def signing_keys(proxy: Any, account: str, container: str) -> list[str]:
    """The account's and the container's Temp-URL-Key(-2) (formpost signs with the same keys)."""
    found: list[str] = []
    for info in (await proxy.info.get(account), await proxy.info.get(account, container)):
        if info["status"] < 300:
            found.extend(v for k in KEYS if (v := info["meta"].get(k)))
    return found


def make(proxy: Any, **_: Any) -> Any:
    async def keys(account: str, container: str) -> list[str]:
        return await signing_keys(proxy, account, container)

    @web.middleware
    async def tempurl(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.get(PATH)
        query = request.query
        if path is None or ("temp_url_sig" not in query and "temp_url_expires" not in query):
            return await handler(request)
        sig, expires = query.get("temp_url_sig", ""), query.get("temp_url_expires", "")
        if path.obj is None or path.container is None or request.method not in METHODS or not sig or not expires:
            raise _invalid()
        if request.method in ("PUT", "POST") and ("X-Object-Manifest" in request.headers
                                                  or query.get("multipart-manifest") == "put"):
            # A manifest would make other objects of the account readable through this one URL.
            raise status_error(400, "A temporary URL cannot create a large object manifest.")
        when = parse_expires(expires)
        if when < time.time():
            raise _invalid()
        alg, given = parse_sig(sig)
        if not alg:
            raise _invalid()
        prefix = query.get("temp_url_prefix")
        if prefix is not None:
            if not path.obj.startswith(prefix):
                raise _invalid()
            signed = [f"prefix:/{path.version}/{path.account}/{path.container}/{prefix}"]
        else:
            signed = [request.path, request.raw_path.split("?", 1)[0]]
        # A HEAD may use a URL signed for GET, HEAD or PUT, as in Swift.
        methods = ("HEAD", "GET", "PUT") if request.method == "HEAD" else (request.method,)
        ok = any(hmac.compare_digest(signature(key, alg, m, expires, p), given)
                 for key in await keys(path.account, path.container) for m in methods for p in signed)
        if not ok:
            raise _invalid()
        request[AUTH] = Auth(None, allow_account(path.account), {"tempurl": True})
        response = await handler(request)
        if request.method in ("GET", "HEAD") and response.status < 300 and not response.prepared:
            decorate(response, path.obj, query)
        return response

    return tempurl


def decorate(response: web.StreamResponse, obj: str, query: Any) -> None:
    """Content-Disposition from ``filename``/``inline`` (an attachment named after the object by default); the
    object's metadata is not shown to a URL's holder."""
    name = query.get("filename") or obj.rsplit("/", 1)[-1]
    safe = name.replace('"', "").replace("\\", "")
    if "inline" in query:
        response.headers["Content-Disposition"] = f'inline; filename="{safe}"' if "filename" in query else "inline"
    else:
        response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    for key in [k for k in response.headers if k.lower().startswith("x-object-meta-")]:
        del response.headers[key]
