"""Glance's version document: clients discover the v2 API from it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Route, json_response
from tinystack.image.api.common import base_url

# As Glance lists them with no image cache configured: 2.14 and 2.16 are the cache API, not served here;
# 2.17 adds the service location API (POST/GET /v2/images/{id}/locations).
SERVED = (17, 15, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
CURRENT = (2, SERVED[0])


def versions(base: str) -> list[dict[str, Any]]:
    major, newest = CURRENT
    return [{"id": f"v{major}.{minor}", "status": "CURRENT" if minor == newest else "SUPPORTED",
             "links": [{"rel": "self", "href": f"{base}/v2/"}]} for minor in SERVED]


async def root(request: web.Request) -> web.Response:
    return json_response({"versions": versions(base_url(request))}, status=300)


async def explicit(request: web.Request) -> web.Response:
    return json_response({"versions": versions(base_url(request))})


def routes() -> list[Route]:
    return [Route("GET", "/", root, public=True), Route("GET", "/versions", explicit, public=True)]
