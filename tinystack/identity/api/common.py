"""Small helpers shared by the identity handlers: links, Keystone's boolean query parameters, listings and
HEAD routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Handler, Route, empty, json_response
from tinystack.identity import views


def base_url(request: web.Request) -> str:
    """The public origin the caller used, for ``links`` (Keystone's public_endpoint)."""
    return f"{request.scheme}://{request.host}"


_FALSE = ("0", "false", "f", "no", "n", "off")


def flag(request: web.Request, name: str) -> bool | None:
    """Keystone's reading of a boolean query parameter: anything but a false word is true."""
    raw = request.query.get(name)
    return None if raw is None else raw.strip().lower() not in _FALSE


def listing(request: web.Request, key: str, items: list[dict[str, Any]]) -> web.Response:
    return json_response(views.collection(base_url(request), request.path_qs.removeprefix("/v3/"), key, items))


def with_head(routes: list[Route]) -> list[Route]:
    """``routes`` and a HEAD route for each GET, answering with the GET's status and no body."""
    return routes + [Route("HEAD", r.path, _head(r.handler)) for r in routes if r.method == "GET"]


def _head(handler: Handler) -> Handler:
    async def head(request: web.Request) -> web.StreamResponse:
        return empty((await handler(request)).status)

    return head
