"""Keystone's version documents: clients discover the v3 API from these."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Route, json_response
from tinystack.identity.api.common import base_url
from tinystack.identity.service import IdentityService

V3 = {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z"}
MEDIA_V3 = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
V2 = {"id": "v2.0", "status": "deprecated", "updated": "2016-08-04T00:00:00Z"}
MEDIA_V2 = [{"base": "application/json", "type": "application/vnd.openstack.identity-v2.0+json"}]


def _v3(base: str) -> dict[str, Any]:
    return {**V3, "links": [{"rel": "self", "href": f"{base}/v3/"}], "media-types": MEDIA_V3}


def _v2(base: str) -> dict[str, Any]:
    return {**V2, "links": [{"rel": "self", "href": f"{base}/v2.0/"},
                            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}],
            "media-types": MEDIA_V2}


async def root(request: web.Request) -> web.Response:
    base = base_url(request)
    return json_response({"versions": {"values": [_v3(base), _v2(base)]}}, status=300)


async def v3(request: web.Request) -> web.Response:
    return json_response({"version": _v3(base_url(request))})


async def v2(request: web.Request) -> web.Response:
    return json_response({"version": _v2(base_url(request))})


def routes(_svc: IdentityService) -> list[Route]:
    return [Route("GET", path, handler, public=True)
            for path, handler in (("/", root), ("/v3", v3), ("/v3/", v3), ("/v2.0", v2), ("/v2.0/", v2))]
