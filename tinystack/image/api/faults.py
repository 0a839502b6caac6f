"""Glance renders errors through WebOb, which picks the body from the Accept header: HTML when the client
takes anything (or sends no Accept), JSON (``message``, ``code``, ``title``) when it asks for JSON, and
plain text otherwise. openstacksdk shows the message from the first two."""

from __future__ import annotations

import html
import json

from aiohttp import web

from tinystack.core.web import Handler, ServiceApp

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


@web.middleware
async def negotiate(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if response.status < 400 or not isinstance(response, web.Response) or response.content_type != "text/plain":
        return response
    kind = choose(request.headers.get("Accept"))
    if kind == "text/plain" or response.text is None:
        return response
    status_line, _, message = response.text.partition("\n\n")
    message = message.strip()
    if kind == "application/json":
        title = status_line.split(" ", 1)[1] if " " in status_line else status_line
        out = web.Response(text=json.dumps({"message": message, "code": status_line, "title": title}),
                           status=response.status, content_type="application/json")
    else:
        status = html.escape(status_line)
        out = web.Response(text=f"<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n"
                                f"  {html.escape(message)}<br /><br />\n\n\n\n </body>\n</html>",
                           status=response.status, content_type="text/html")
    for name, value in response.headers.items():
        if name.lower() not in ("content-type", "content-length"):
            out.headers[name] = value
    return out


class GlanceApp(ServiceApp):
    """A ServiceApp whose error bodies follow the client's Accept header, as Glance's do."""

    def build(self) -> web.Application:
        app = super().build()
        app.middlewares.insert(0, negotiate)  # outermost: sees the fault the shared middleware rendered
        return app
