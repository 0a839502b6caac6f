"""The console proxy's HTTP side (port 6080, nova-novncproxy's place): the noVNC page and files, and the
websocket at ``/`` (or ``/websockify``) that a token opens, once."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from tinystack.console import proxy
from tinystack.console.service import ConsoleService, TokenRefused
from tinystack.core import errors
from tinystack.core.web import Route, ServiceApp, plain_fault

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PAGE = HERE / "page" / "vnc.html"
NOVNC = HERE / "vendor" / "novnc"  # third-party: a pinned copy of @novnc/novnc


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _origin_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    """A browser's websocket carries its page's Origin: it must be this proxy's host (the page it serves) or an
    allowed one, so another site cannot drive a console with a URL it got hold of. Clients that are no browser
    send none."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    origin_host = (urlsplit(origin).hostname or "").lower()
    own_host = (urlsplit(f"//{request.host}").hostname or "").lower()
    return bool(origin_host) and (origin_host == own_host or origin_host in allowed)


class Handlers:
    def __init__(self, svc: ConsoleService) -> None:
        self.svc = svc

    def _page(self) -> web.FileResponse:
        # Framed only by its own origin and the dashboard's (the Console tab), never by another site's page
        # (clickjacking). CSP alone: X-Frame-Options cannot name another origin, and browsers that know
        # frame-ancestors ignore it anyway.
        return web.FileResponse(PAGE, headers={
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": f"frame-ancestors {self.svc.frame_ancestors()}"})

    async def root(self, request: web.Request) -> web.StreamResponse:
        if not _is_upgrade(request):
            return self._page()
        if not _origin_allowed(request, self.svc.allowed_origins):
            raise errors.Forbidden("The Origin of this request is not this console proxy's host.")
        # Nova's proxies take the token from the query, or from a cookie set by the page.
        token = request.query.get("token") or request.cookies.get("token") or ""
        try:
            target = await self.svc.open(token)
        except TokenRefused:
            log.info("console connection refused: invalid, expired or used token")
            raise errors.Forbidden("The console token is invalid, has expired or was used already.") from None
        label = f"{target.grant.console_type} of {target.grant.instance_id} on {target.host}"
        try:
            reader, writer = await proxy.connect(target, self.svc.node_secret)
        except OSError as exc:
            where = target.path if target.local or not target.bridge else f"the console bridge {target.bridge}"
            log.warning("console %s: cannot reach %s: %s", label, where, exc)
            raise errors.Conflict(f"The console of instance {target.grant.instance_id} cannot be reached now.") \
                from None
        log.info("console %s opened", label)
        return await proxy.bridge(request, reader, writer, label)

    async def page(self, request: web.Request) -> web.StreamResponse:
        return self._page()

    async def novnc(self, request: web.Request) -> web.StreamResponse:
        """noVNC's modules, and nothing outside their directory."""
        root = (NOVNC / request.match_info["top"]).resolve()
        target = (root / request.match_info["tail"]).resolve()
        if root not in target.parents or not target.is_file():
            raise errors.NotFound("The resource could not be found.")
        return web.FileResponse(target, headers={"Cache-Control": "max-age=86400"})


def routes(svc: ConsoleService) -> list[Route]:
    h = Handlers(svc)
    return [Route("GET", "/", h.root, public=True), Route("GET", "/websockify", h.root, public=True),
            Route("GET", "/vnc_lite.html", h.page, public=True), Route("GET", "/vnc_auto.html", h.page, public=True),
            Route("GET", "/vnc.html", h.page, public=True),
            Route("GET", "/{top:core|vendor}/{tail:.+}", h.novnc, public=True)]


def app(svc: ConsoleService) -> ServiceApp:
    return ServiceApp("console", routes(svc), plain_fault, client_max_size=64 * 1024)
