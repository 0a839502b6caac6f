"""The dashboard's aiohttp application: security headers, the session and CSRF checks, login and admin
gates, and errors from the APIs turned into pages (or flash messages after a form)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import jinja2
from aiohttp import web
from yarl import URL

from tinystack.dashboard import csrf
from tinystack.dashboard.client import Api, ApiError
from tinystack.dashboard.session import COOKIE, Session, SessionStore
from tinystack.dashboard.views import PAGES
from tinystack.dashboard.web import (
    API,
    HTTP,
    IDENTITY_URL,
    JINJA,
    REGION,
    SESSION,
    STORE,
    FormError,
    Handler,
    Page,
    back,
    redirect,
    render,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The console tab frames the console proxy: another origin, named by the compute API.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; frame-src *; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'",
}


@dataclass
class Dashboard:
    """Builds the application. ``identity_url``: Keystone's v3 URL, where logins go; everything else is found in
    the catalog of the user's token."""

    identity_url: str
    region: str = "RegionOne"
    pages: list[Page] = field(default_factory=lambda: list(PAGES))
    store: SessionStore = field(default_factory=SessionStore)

    def build(self) -> web.Application:
        app = web.Application(middlewares=[headers_middleware, session_middleware], client_max_size=64 * 1024 * 1024)
        app[JINJA] = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                        autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True,
                                        lstrip_blocks=True)
        # Static files are named with a hash of their content: a browser keeps them for a year and never asks
        # again on the next page (a login used to spend two revalidation round trips on them), and a new
        # version has a new URL.
        app[JINJA].globals["static_version"] = static_version(HERE / "static")
        app[STORE] = self.store
        app[IDENTITY_URL] = self.identity_url.rstrip("/")
        app[REGION] = self.region
        for page in self.pages:
            app.router.add_route(page.method, page.path, _gate(page))
        app.router.add_static("/static/", HERE / "static", append_version=False)
        app.cleanup_ctx.append(_http_client)
        return app


def static_version(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    # One connection pool for every user: the dashboard is a client in the same process or on the same host.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), timeout=aiohttp.ClientTimeout(total=60))
    app[HTTP] = http
    yield
    await http.close()


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects stay exceptions, as aiohttp wants them
            exc.headers.update(SECURITY_HEADERS)
            raise
        response = render(request, "error.html", status=exc.status, title=exc.reason, message=exc.text or exc.reason)
    except Exception:
        rid = f"req-{uuid.uuid4()}"
        log.exception("[%s] dashboard %s %s failed", rid, request.method, request.path)
        response = render(request, "error.html", status=500, title="Error",
                          message=f"Something went wrong on the dashboard's side (request {rid}).")
    response.headers.update(SECURITY_HEADERS)
    if response.content_type == "text/html":
        response.headers["Cache-Control"] = "no-store"
    elif request.path.startswith("/static/") and request.query.get("v") and response.status == 200:
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    store = request.app[STORE]
    sess = store.get(request.cookies.get(COOKIE))
    if sess is not None:
        request[SESSION] = sess
        if sess.logged_in:
            request[API] = Api(request.app[HTTP], sess.token, sess.urls)
    if not await csrf.check(request, sess):
        return render(request, "error.html", status=403, title="Forbidden",
                      message="The form was refused: its CSRF token is missing or wrong. Reload the page and try again.")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if request.get(SESSION) is not sess:
            _set_cookie(exc, request.get(SESSION))
        raise
    if request.get(SESSION) is not sess:
        _set_cookie(response, request.get(SESSION))
    return response


def _set_cookie(response: web.StreamResponse, sess: Session | None) -> None:
    if sess is None:
        response.del_cookie(COOKIE, path="/")
    else:
        response.set_cookie(COOKIE, sess.id, path="/", httponly=True, samesite="Lax")


def _gate(page: Page) -> Handler:
    """Login and admin checks, then the page; an API's error becomes an error page or, after a form, a flash."""

    async def handler(request: web.Request) -> web.StreamResponse:
        sess = request.get(SESSION)
        if not page.public and (sess is None or not sess.logged_in):
            if request.method == "GET" and not request.headers.get("X-Partial"):
                raise redirect(f"/auth/login/?next={request.path_qs}" if request.path != "/" else "/auth/login/")
            return render(request, "error.html", status=401, title="Login required",
                          message="Your session has ended. Log in again.")
        if page.admin and not (sess is not None and sess.is_admin):
            return render(request, "error.html", status=403, title="Forbidden",
                          message="This page is for administrators.")
        try:
            return await page.handler(request)
        except (ApiError, FormError) as exc:
            status = exc.status if isinstance(exc, ApiError) else 400
            message = exc.message if isinstance(exc, ApiError) else str(exc)
            if status == 401 and sess is not None:
                request.app[STORE].drop(sess)
                request.pop(SESSION, None)
                raise redirect("/auth/login/") from None
            if request.method == "POST" and sess is not None and not page.public:
                sess.flash("error", f"Error: {message}")
                raise redirect(back(request, _referer(request))) from None
            return render(request, "error.html", status=status, title=f"Error {status}", message=message)

    return handler


def _referer(request: web.Request) -> str:
    """The page a form was sent from, when it is on this site (the place to show a form's error)."""
    ref = URL(request.headers.get("Referer", ""))
    if ref.host == request.url.host and ref.port == request.url.port and ref.path.startswith("/"):
        return ref.path_qs
    return "/project/"
