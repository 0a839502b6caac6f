"""Nova's version documents: clients negotiate the microversion from them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Route, json_response


def _doc(request: web.Request) -> dict[str, Any]:
    from tinystack.compute.api import MAX_VERSION, MIN_VERSION

    root = f"{request.scheme}://{request.host}"
    return {"id": "v2.1", "status": "CURRENT", "version": str(MAX_VERSION), "min_version": str(MIN_VERSION),
            "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": f"{root}/v2.1/"},
                                                          {"rel": "describedby", "type": "text/html",
                                                           "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


async def root(request: web.Request) -> web.Response:
    v2 = {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
          "links": [{"rel": "self", "href": f"{request.scheme}://{request.host}/v2/"}]}
    return json_response({"versions": [v2, _doc(request)]})


async def current(request: web.Request) -> web.Response:
    return json_response({"version": _doc(request)})


def routes() -> list[Route]:
    return [Route("GET", "/", root, public=True), Route("GET", "/v2.1", current, public=True),
            Route("GET", "/v2.1/", current, public=True)]
