"""CSRF: every state-changing request carries the session's secret, as a form field or (from the page's own
script) a header. Requests without a session, or with a wrong or missing secret, are refused with 403."""

from __future__ import annotations

from aiohttp import web

from tinystack.dashboard.session import Session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def check(request: web.Request, sess: Session | None) -> bool:
    """Whether this request may change something: safe methods always, others with the right token."""
    if request.method in SAFE_METHODS:
        return True
    if sess is None:
        return False
    offered = request.headers.get(HEADER)
    if offered is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(FIELD)
        offered = value if isinstance(value, str) else None
    return sess.csrf_ok(offered)
