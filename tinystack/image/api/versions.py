"""Glance's version document: clients discover the v2 API from it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Route, json_response
from tinystack.image.api.common import base_url

CURRENT = (2, 13)


def versions(base: str) -> list[dict[str, Any]]:
    major, newest = CURRENT
    out = []
    for minor in range(newest, -1, -1):
        out.append({"id": f"v{major}.{minor}", "status": "CURRENT" if minor == newest else "SUPPORTED",
                    "links": [{"rel": "self", "href": f"{base}/v2/"}]})
    return out


async def root(request: web.Request) -> web.Response:
    return json_response({"versions": versions(base_url(request))}, status=300)


async def explicit(request: web.Request) -> web.Response:
    return json_response({"versions": versions(base_url(request))})


def routes() -> list[Route]:
    return [Route("GET", "/", root, public=True), Route("GET", "/versions", explicit, public=True)]
