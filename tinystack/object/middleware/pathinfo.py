"""Parses the Swift path once for every later middleware and controller (``request[PATH]``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.object.request import PATH, parse


def make(_proxy: Any, **_: Any) -> Any:
    @web.middleware
    async def pathinfo(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = parse(request)
        if path is not None:
            request[PATH] = path
        return await handler(request)

    return pathinfo
