"""Object storage as the backup driver uses it: Swift's HTTP API under the service account
(``AUTH_<service project>``, found in the service token's catalog), with streamed bodies both ways.

Failures become ``DriverError``s that say whether trying again can help; a 404 is an answer, not a failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp

from tinystack.core.svcauth import ServiceAuthError
from tinystack.volume.drivers.base import DriverError
from tinystack.volume.drivers.imageapi import AuthFn

READ_CHUNK = 1 << 20
LIST_LIMIT = 1000


class SwiftClient:
    def __init__(self, auth: AuthFn, timeout: float = 600.0) -> None:
        self._auth = auth
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout, sock_read=300))
        return self._http

    async def _where(self, container: str, obj: str | None = None) -> tuple[str, dict[str, str]]:
        try:
            svc = self._auth()
            url, token = await svc.endpoint("object-store"), await svc.token()
        except ServiceAuthError as exc:
            raise DriverError(f"cannot reach object storage: {exc}") from exc
        path = f"{url}/{quote(container, safe='')}"
        if obj is not None:
            path += f"/{quote(obj, safe='/')}"
        return path, {"X-Auth-Token": token}

    def _refused(self, status: int, what: str, text: str = "") -> DriverError:
        if status == 401:
            self._auth().invalidate()  # revoked or expired early: the retry gets a new token
        return DriverError(f"object storage: {what} gave {status} {text[:200]}".rstrip(),
                           permanent=status in (400, 403, 411, 413))

    async def ensure_container(self, container: str) -> None:
        url, headers = await self._where(container)
        try:
            async with self._session().put(url, headers=headers) as resp:
                if resp.status not in (201, 202, 204):
                    raise self._refused(resp.status, f"PUT {container}", await resp.text())
        except aiohttp.ClientError as exc:
            raise DriverError(f"object storage unreachable: {exc}") from exc

    async def put(self, container: str, name: str, body: bytes | AsyncIterator[bytes],
                  headers: dict[str, str] | None = None) -> None:
        """Store an object; a streamed ``body`` goes out chunked, and the ETag the store answers is checked
        against the MD5 of what was sent."""
        url, hdrs = await self._where(container, name)
        hdrs.update(headers or {})
        md5 = hashlib.md5(usedforsecurity=False)
        data: Any
        if isinstance(body, bytes):
            md5.update(body)
            data = body
        else:
            async def counted() -> AsyncIterator[bytes]:
                async for piece in body:
                    md5.update(piece)
                    yield piece

            data = counted()
        try:
            async with self._session().put(url, data=data, headers=hdrs) as resp:
                if resp.status != 201:
                    raise self._refused(resp.status, f"PUT {container}/{name}", await resp.text())
                etag = resp.headers.get("Etag", "").strip('"')
        except aiohttp.ClientError as exc:
            raise DriverError(f"upload of {container}/{name} failed: {exc}") from exc
        if etag and etag != md5.hexdigest():
            raise DriverError(f"{container}/{name}: the store's ETag {etag} is not the MD5 sent ({md5.hexdigest()})")

    async def get(self, container: str, name: str) -> AsyncIterator[bytes]:
        """The object's bytes as they arrive; a missing object is a permanent ``DriverError``."""
        url, headers = await self._where(container, name)
        try:
            async with self._session().get(url, headers=headers) as resp:
                if resp.status == 404:
                    raise DriverError(f"backup object {container}/{name} not found", permanent=True)
                if resp.status != 200:
                    raise self._refused(resp.status, f"GET {container}/{name}", await resp.text())
                async for piece in resp.content.iter_chunked(READ_CHUNK):
                    yield piece
        except aiohttp.ClientError as exc:
            raise DriverError(f"download of {container}/{name} failed: {exc}") from exc

    async def get_json(self, container: str, name: str) -> dict[str, Any] | None:
        """A small JSON object, or None when it does not exist."""
        url, headers = await self._where(container, name)
        try:
            async with self._session().get(url, headers=headers) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise self._refused(resp.status, f"GET {container}/{name}", await resp.text())
                raw = await resp.read()
        except aiohttp.ClientError as exc:
            raise DriverError(f"download of {container}/{name} failed: {exc}") from exc
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise DriverError(f"{container}/{name} is not JSON", permanent=True) from exc
        if not isinstance(doc, dict):
            raise DriverError(f"{container}/{name} is not a JSON object", permanent=True)
        return doc

    async def delete(self, container: str, name: str) -> None:
        """Remove an object; one already gone is fine."""
        url, headers = await self._where(container, name)
        try:
            async with self._session().delete(url, headers=headers) as resp:
                if resp.status not in (204, 404):
                    raise self._refused(resp.status, f"DELETE {container}/{name}", await resp.text())
        except aiohttp.ClientError as exc:
            raise DriverError(f"delete of {container}/{name} failed: {exc}") from exc

    async def names(self, container: str, prefix: str) -> list[str]:
        """Every object name in ``container`` starting with ``prefix`` (paged by marker); none for no container."""
        url, headers = await self._where(container)
        out: list[str] = []
        marker = ""
        while True:
            params = {"format": "json", "prefix": prefix, "limit": str(LIST_LIMIT), "marker": marker}
            try:
                async with self._session().get(url, headers=headers, params=params) as resp:
                    if resp.status == 404:
                        return out
                    if resp.status not in (200, 204):
                        raise self._refused(resp.status, f"GET {container}?prefix", await resp.text())
                    page = await resp.json() if resp.status == 200 else []
            except aiohttp.ClientError as exc:
                raise DriverError(f"listing {container} failed: {exc}") from exc
            out.extend(str(o["name"]) for o in page)
            if len(page) < LIST_LIMIT:
                return out
            marker = out[-1]
