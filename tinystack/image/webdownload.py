"""The web-download import method's source: which URLs the site may fetch, and their bodies as a stream.

Only http and https. A host named in ``[image] web_download_allowed_hosts`` may be reached on any port and
address; any other host must use one of ``web_download_allowed_ports`` and resolve only to global addresses,
so a user cannot make the image service read from the host itself or the private networks around it. The
address rule is applied again when connecting and on every redirect, so a name re-pointed after the check
(DNS rebinding) or a redirect to an internal address fails the import instead."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from tinystack.core import errors
from tinystack.image import transfer
from tinystack.image.settings import ImageSettings

MAX_REDIRECTS = 5


class Refused(errors.BadRequest):
    """The URL does not pass the site's web-download rules."""

    def __init__(self, uri: str, why: str) -> None:
        super().__init__(f"URI for web-download does not pass filtering: {uri} ({why})")


def _is_global(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_global
    except ValueError:
        return False


def check_url(uri: str, settings: ImageSettings) -> tuple[str, int, bool]:
    """The URL's host and port and whether the host is explicitly allowed; Refused when its form breaks a rule."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise Refused(uri, str(exc)) from None
    if parts.scheme not in ("http", "https"):
        raise Refused(uri, "only http and https are allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise Refused(uri, "no host")
    if parts.username or parts.password:
        raise Refused(uri, "credentials in the URL are not allowed")
    port = port or (443 if parts.scheme == "https" else 80)
    listed = host in settings.web_download_allowed_hosts
    if not listed:
        if port not in settings.web_download_allowed_ports:
            raise Refused(uri, f"port {port} is not allowed")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass  # a name: its addresses are checked when it is resolved
        else:
            if not _is_global(host):
                raise Refused(uri, f"{host} is not a public address")
    return host, port, listed


async def check_resolves(uri: str, settings: ImageSettings) -> None:
    """``check_url``, and for a name not explicitly allowed: it resolves, and only to public addresses."""
    host, port, listed = check_url(uri, settings)
    if listed or _is_literal(host):
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(uri, f"{host} does not resolve: {exc}") from None
    if not all(_is_global(str(info[4][0])) for info in infos):
        raise Refused(uri, f"{host} resolves to a non-public address")


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _PublicOnly(AbstractResolver):
    """Resolves as aiohttp does, refusing names that lead to non-public addresses unless the host is allowed."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self._inner = DefaultResolver()
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if host.lower() not in self._allowed and not all(_is_global(r["host"]) for r in found):
            raise OSError(f"{host} resolves to a non-public address")
        return found

    async def close(self) -> None:
        await self._inner.close()


async def fetch(uri: str, settings: ImageSettings) -> AsyncIterator[bytes]:
    """The body at ``uri`` in chunks, following up to MAX_REDIRECTS redirects (each one checked).

    Raises Refused for a URL the rules forbid and transfer.SourceError when the transfer fails."""
    timeout = aiohttp.ClientTimeout(total=settings.web_download_timeout, sock_connect=30, sock_read=60)
    connector = aiohttp.TCPConnector(resolver=_PublicOnly(settings.web_download_allowed_hosts))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=False) as session:
        url = uri
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, settings)
            try:
                async with session.get(url, allow_redirects=False) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise transfer.SourceError(f"{url} answered {resp.status} {resp.reason}")
                    async for chunk in resp.content.iter_chunked(transfer.BLOCK):
                        yield chunk
                    return
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise transfer.SourceError(f"could not read {url}: {exc or type(exc).__name__}") from exc
        raise transfer.SourceError(f"more than {MAX_REDIRECTS} redirects from {uri}")

