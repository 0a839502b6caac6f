"""``/healthcheck``: 200 OK while the proxy runs (load balancers poll it; it needs no token)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Handler


def make(_proxy: Any, **_: Any) -> Any:
    @web.middleware
    async def healthcheck(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthcheck" and request.method in ("GET", "HEAD"):
            return web.Response(text="OK" if request.method == "GET" else None, content_type="text/plain")
        return await handler(request)

    return healthcheck
