"""CORS as Swift does it: a preflight OPTIONS is answered from the container's
``X-Container-Meta-Access-Control-Allow-Origin`` (and Max-Age, Expose-Headers), or ``[object] cors_allow_origin``;
a real request from an allowed Origin gets the Access-Control headers on its answer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.object.common import status_error
from tinystack.object.request import PATH

METHODS = "HEAD, GET, PUT, POST, COPY, OPTIONS, DELETE"
EXPOSE = ("cache-control, content-language, content-type, expires, last-modified, pragma, etag, x-timestamp, "
          "x-trans-id, x-openstack-request-id")


def _allowed(origin: str, container: dict[str, Any] | None, defaults: tuple[str, ...]) -> bool:
    allowed = set(defaults)
    if container is not None:
        allowed |= set((container.get("meta", {}).get("access-control-allow-origin") or "").split())
    return "*" in allowed or origin in allowed


def make(proxy: Any, **_: Any) -> Any:
    defaults = proxy.settings.cors_allow_origin

    async def container_info(request: web.Request) -> dict[str, Any] | None:
        path = request.get(PATH)
        if path is None or path.container is None:
            return None
        info = await proxy.info.get(path.account, path.container)
        return info if info["status"] < 300 else None

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS":
            if not origin or not request.headers.get("Access-Control-Request-Method"):
                return web.Response(status=200, headers={"Allow": METHODS})
            info = await container_info(request)
            if PATH in request and not _allowed(origin, info, defaults):
                raise status_error(401, "The origin is not allowed on this container.")
            headers = {"Allow": METHODS, "Access-Control-Allow-Origin": origin,
                       "Access-Control-Allow-Methods": METHODS}
            wanted = request.headers.get("Access-Control-Request-Headers")
            if wanted:
                headers["Access-Control-Allow-Headers"] = wanted
            max_age = (info or {}).get("meta", {}).get("access-control-max-age")
            if max_age:
                headers["Access-Control-Max-Age"] = max_age
            return web.Response(status=200, headers=headers)
        response = await handler(request)
        if origin:
            info = await container_info(request)
            if _allowed(origin, info, defaults):
                response.headers["Access-Control-Allow-Origin"] = origin
                extra = (info or {}).get("meta", {}).get("access-control-expose-headers", "")
                meta = [k for k in response.headers if k.lower().startswith("x-object-meta-")]
                response.headers["Access-Control-Expose-Headers"] = ", ".join(filter(None, [EXPOSE, extra, *meta]))
        return response

    return cors
