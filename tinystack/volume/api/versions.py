"""Cinder's version documents: clients negotiate the microversion from them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Route, json_response


def _doc(request: web.Request) -> dict[str, Any]:
    from tinystack.volume.api import MAX_VERSION, MIN_VERSION

    root = f"{request.scheme}://{request.host}"
    return {"id": "v3.0", "status": "CURRENT", "version": str(MAX_VERSION), "min_version": str(MIN_VERSION),
            "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{root}/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


async def root(request: web.Request) -> web.Response:
    # Cinder answers the unversioned root with 300 Multiple Choices.
    return json_response({"versions": [_doc(request)]}, status=300)


async def current(request: web.Request) -> web.Response:
    return json_response({"versions": [_doc(request)]})


def routes() -> list[Route]:
    return [Route("GET", "/", root, public=True), Route("GET", "/v3", current, public=True),
            Route("GET", "/v3/", current, public=True)]
