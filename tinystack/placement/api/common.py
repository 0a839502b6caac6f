"""Helpers the placement handlers share: microversion gates, path and query parsing, Last-Modified headers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Version, json_response, version


def at_least(request: web.Request, major: int, minor: int) -> bool:
    return version(request) >= Version(major, minor)


def require(request: web.Request, major: int, minor: int) -> None:
    """Routes added in a later microversion do not exist for earlier ones: 404, as placement answers."""
    if not at_least(request, major, minor):
        raise errors.NotFound("The resource could not be found.")


def vtuple(request: web.Request) -> tuple[int, int]:
    v = version(request)
    return (v.major, v.minor)


def respond(request: web.Request, body: Any, status: int = 200, modified: datetime | None = None) -> web.Response:
    """JSON with, from 1.15, ``Last-Modified`` and ``Cache-Control: no-cache`` on what was read."""
    headers = {}
    if at_least(request, 1, 15) and (request.method == "GET" or modified is not None):
        when = (modified or datetime.now(UTC).replace(tzinfo=None)).replace(tzinfo=UTC)
        headers = {"Last-Modified": format_datetime(when, usegmt=True), "Cache-Control": "no-cache"}
    return json_response(body, status, headers)


def path_uuid(request: web.Request, name: str = "uuid") -> str:
    import uuid as uuidlib

    raw = request.match_info[name]
    try:
        return str(uuidlib.UUID(raw))
    except ValueError:
        raise errors.NotFound(f"No resource provider with uuid {raw} found",
                              code="placement.resource_provider.not_found") from None



def check_query(request: web.Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise errors.BadRequest(f"Invalid query string parameters: Additional properties are not allowed "
                                f"({', '.join(repr(u) for u in unknown)} unexpected)")
