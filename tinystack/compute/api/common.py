"""Helpers shared by the compute handlers."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import REQUEST_ID


def base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}/v2.1"


def rid(request: web.Request) -> str:
    return request[REQUEST_ID]


def mid(request: web.Request, name: str) -> str:
    return request.match_info[name]
