"""Helpers shared by the block storage handlers: both URL forms, the project check, links and paging."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Handler, Route, ctx

PREFIXES = ("/v3/{project_id}", "/v3")


def both(method: str, path: str, handler: Handler) -> list[Route]:
    """The route under ``/v3/{project_id}`` and, since 3.67, under ``/v3`` alone."""
    return [Route(method, prefix + path, checked(handler)) for prefix in PREFIXES]


def checked(handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        url_project = request.match_info.get("project_id")
        c = ctx(request)
        if url_project is not None and url_project != c.project_id and not c.is_admin:
            raise errors.BadRequest("Malformed request url: the project in the URL is not the token's project.")
        return await handler(request)

    return run


def base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}/v3"


def query(request: web.Request) -> dict[str, str]:
    return {k: request.query[k] for k in request.query}


def next_links(request: web.Request, kind: str, last_id: str | None, more: bool) -> dict[str, list[dict[str, str]]]:
    """``<kind>_links`` with a ``next`` link when the page was full, as Cinder does."""
    if not more or last_id is None:
        return {}
    params = [(k, v) for k, v in request.query.items() if k != "marker"] + [("marker", last_id)]
    href = f"{request.scheme}://{request.host}{request.path}?{urlencode(params)}"
    return {f"{kind}_links": [{"rel": "next", "href": href}]}
