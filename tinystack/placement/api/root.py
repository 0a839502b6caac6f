"""The placement version document at ``/``: clients negotiate microversions from it."""

from __future__ import annotations

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import REQUEST_ID, Microversions, Route, Version, json_response

MICROVERSIONS = Microversions("placement", Version(1, 0), Version(1, 28))


async def root(request: web.Request) -> web.Response:
    lo, hi = MICROVERSIONS.minimum, MICROVERSIONS.maximum
    try:
        v = MICROVERSIONS.negotiate(request)
    except errors.NotAcceptable as exc:
        # osc-placement asks for its newest version here and falls back to the max_version in this fault.
        body = {"status": 406, "title": "Not Acceptable", "detail": exc.message, "request_id": request[REQUEST_ID],
                "max_version": str(hi), "min_version": str(lo)}
        return json_response({"errors": [body]}, 406)
    doc = {"versions": [{"id": "v1.0", "max_version": str(hi), "min_version": str(lo), "status": "CURRENT",
                         "links": [{"rel": "self", "href": ""}]}]}
    return json_response(doc, headers=MICROVERSIONS.headers(v))


def routes() -> list[Route]:
    return [Route("GET", "/", root, public=True)]
