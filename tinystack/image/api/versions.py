"""Glance's version document: clients discover the v2 API from it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Route, json_response
from tinystack.image.api.common import base_url

# 2.17 adds the service location API (POST/GET /v2/images/{id}/locations). As in Glance, 2.14 and 2.16 (the
# cache API) are listed only where the node has an image cache.
CURRENT = (2, 17)
WITHOUT_CACHE = (14, 16)


def versions(base: str, cache: bool = True) -> list[dict[str, Any]]:
    major, newest = CURRENT
    return [{"id": f"v{major}.{minor}", "status": "CURRENT" if minor == newest else "SUPPORTED",
             "links": [{"rel": "self", "href": f"{base}/v2/"}]}
            for minor in range(newest, -1, -1) if cache or minor not in WITHOUT_CACHE]


def routes(cache: bool) -> list[Route]:
    async def root(request: web.Request) -> web.Response:
        return json_response({"versions": versions(base_url(request), cache)}, status=300)

    async def explicit(request: web.Request) -> web.Response:
        return json_response({"versions": versions(base_url(request), cache)})

    return [Route("GET", "/", root, public=True), Route("GET", "/versions", explicit, public=True)]
