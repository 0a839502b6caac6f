"""The image API as volume drivers use it: read an image's data into a file, store a file as an image's data.

Requests carry the service token (``tinystack.core.svcauth``); failures become ``DriverError``s that say whether
trying again can help.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tinystack.core.svcauth import ServiceAuth, ServiceAuthError
from tinystack.volume.drivers.base import DriverError

log = logging.getLogger(__name__)

AuthFn = Callable[[], ServiceAuth]
CHUNK = 1 << 20


async def _session(auth: AuthFn) -> tuple[str, dict[str, str]]:
    try:
        svc = auth()
        return await svc.endpoint("image"), {"X-Auth-Token": await svc.token()}
    except ServiceAuthError as exc:
        raise DriverError(f"cannot reach the image API: {exc}") from exc


def _refused(auth: AuthFn, status: int, what: str) -> DriverError:
    if status == 401:
        auth().invalidate()  # revoked or expired early: the retry gets a new token
    if status == 404:
        return DriverError(f"image {what} not found", permanent=True)
    return DriverError(f"image API: {what} gave {status}", permanent=status in (400, 403, 413))


async def image_meta(auth: AuthFn, image_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """``GET /v2/images/{id}``."""
    url, headers = await _session(auth)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http, \
                http.get(f"{url}/v2/images/{image_id}", headers=headers) as resp:
            if resp.status != 200:
                raise _refused(auth, resp.status, image_id)
            data: dict[str, Any] = await resp.json()
            return data
    except aiohttp.ClientError as exc:
        raise DriverError(f"image API unreachable: {exc}") from exc


async def download(auth: AuthFn, image_id: str, dest: Path, timeout: float) -> None:
    """Write the data of ``image_id`` to ``dest`` (mode 0600), checked against the MD5 the API sends."""
    url, headers = await _session(auth)
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout, sock_read=300)) as http, \
                http.get(f"{url}/v2/images/{image_id}/file", headers=headers) as resp:
            if resp.status == 204:
                raise DriverError(f"image {image_id} has no data", permanent=True)
            if resp.status != 200:
                raise _refused(auth, resp.status, image_id)
            expected = resp.headers.get("Content-MD5")
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    md5.update(chunk)
                    f.write(chunk)
    except TimeoutError as exc:
        raise DriverError(f"download of image {image_id} took longer than {timeout:.0f}s") from exc
    except aiohttp.ClientError as exc:
        raise DriverError(f"download of image {image_id} failed: {exc}") from exc
    if expected and md5.hexdigest() != expected:
        raise DriverError(f"image {image_id}: checksum mismatch ({md5.hexdigest()} != {expected})")


async def upload(auth: AuthFn, image_id: str, path: Path, timeout: float) -> None:
    """``PUT /v2/images/{id}/file`` with the bytes of ``path``."""
    url, headers = await _session(auth)
    headers["Content-Type"] = "application/octet-stream"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout, sock_read=300)) as http:
            with open(path, "rb") as f:
                async with http.put(f"{url}/v2/images/{image_id}/file", data=f, headers=headers) as resp:
                    if resp.status == 409:
                        # Already has data (a retry after the upload went through), or it is being deleted.
                        log.warning("upload to image %s: %s", image_id, (await resp.text())[:200])
                        return
                    if resp.status >= 300:
                        raise _refused(auth, resp.status, image_id)
    except TimeoutError as exc:
        raise DriverError(f"upload to image {image_id} took longer than {timeout:.0f}s") from exc
    except aiohttp.ClientError as exc:
        raise DriverError(f"upload to image {image_id} failed: {exc}") from exc
