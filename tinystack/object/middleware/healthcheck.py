"""``/healthcheck``: 200 OK while the proxy runs, 503 while its process drains (load balancers poll it; it needs
no token). Ahead of the proxy's other middleware, so no auth or path rule sees it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.core.web import healthcheck as healthcheck_answer


def make(_proxy: Any, **_: Any) -> Any:
    @web.middleware
    async def healthcheck(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthcheck" and request.method in ("GET", "HEAD"):
            answer = await healthcheck_answer(request)
            if request.method == "HEAD":
                return web.Response(status=answer.status, content_type="text/plain")
            return answer
        return await handler(request)

    return healthcheck
