"""Glance's fault format. Glance renders errors through WebOb, which picks the body from the Accept header:
HTML when the client takes anything (or sends no Accept), JSON (``message``, ``code``, ``title``) when it asks
for JSON, and plain text otherwise. openstacksdk shows the message from the first two."""

from __future__ import annotations

import html
import json

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import plain_fault

OFFERS = ("text/html", "application/json")


def _ranges(accept: str) -> list[tuple[str, float]]:
    out = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            out.append((media.lower(), q))
    return out


def _specificity(media: str, offer: str) -> int:
    """How closely ``media`` names ``offer``: 3 exactly, 2 as ``type/*``, 1 as ``*/*``, 0 not at all."""
    if media == offer:
        return 3
    if media.endswith("/*") and media != "*/*" and offer.startswith(media[:-1]):
        return 2
    return 1 if media == "*/*" else 0


def choose(accept: str | None) -> str:
    """The body type WebOb would choose among ``OFFERS`` for ``accept``; ``text/plain`` if neither fits."""
    if accept is None:
        return OFFERS[0]
    best, best_q = "text/plain", 0.0
    ranges = _ranges(accept)
    for offer in OFFERS:
        # The most specific range naming the offer sets its quality, as in RFC 9110.
        rank, q = max(((_specificity(media, offer), q) for media, q in ranges), default=(0, 0.0))
        q = q if rank else 0.0
        if q > best_q:
            best, best_q = offer, q
    return best


def glance_fault(err: errors.TinyError, request_id: str, request: web.BaseRequest | None = None) -> web.Response:
    """Glance's fault body in the type the request's Accept header picks; plain text when there is no request
    (aiohttp's own errors, before one exists)."""
    kind = choose(request.headers.get("Accept")) if request is not None else "text/plain"
    if kind == "text/plain":
        return plain_fault(err, request_id)
    status_line = f"{err.status} {err.title}"
    if kind == "application/json":
        return web.Response(text=json.dumps({"message": err.message, "code": status_line, "title": err.title}),
                            status=err.status, content_type="application/json")
    status = html.escape(status_line)
    return web.Response(text=f"<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n"
                             f"  {html.escape(err.message)}<br /><br />\n\n\n\n </body>\n</html>",
                        status=err.status, content_type="text/html")
