"""A proxy request's parsed path and the request keys the middleware pipeline and the controllers share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tinystack.core.auth import RequestContext
from tinystack.object.common import status_error

InfoGetter = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class SwiftPath:
    version: str
    account: str
    container: str | None = None
    obj: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p for p in (self.account, self.container, self.obj) if p is not None)


@dataclass
class Auth:
    """Who is asking (None: no token) and the authorization the auth middleware installed. ``authorize`` gets a
    way to read the container's info (its ACLs), called only when the caller is not the account's owner; it
    raises 401/403."""

    identity: RequestContext | None
    authorize: Callable[[web.Request, InfoGetter | None], Awaitable[None]]
    extra: dict[str, Any] = field(default_factory=dict)


PATH = web.RequestKey("swift_path", SwiftPath)
AUTH = web.RequestKey("swift_auth", Auth)


def parse(request: web.Request) -> SwiftPath | None:
    """``/v1/<account>[/<container>[/<object>]]``; None for a path outside ``/v1`` (info, healthcheck)."""
    raw = request.raw_path.split("?", 1)[0]
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise status_error(412, "Invalid UTF8 or contains NULL") from None
    if "\x00" in path:
        raise status_error(412, "Invalid UTF8 or contains NULL")
    parts = path[1:].split("/", 3)
    if parts[0] not in ("v1", "v1.0") or len(parts) < 2 or not parts[1]:
        return None
    container = parts[2] if len(parts) > 2 else None
    obj = parts[3] if len(parts) > 3 else None
    if container == "" and obj is None:
        container = None
    if container == "" or obj == "":
        if obj == "" and container:
            obj = None  # "/v1/a/c/" is the container
        else:
            raise status_error(412, "Invalid path")
    return SwiftPath(parts[0], parts[1], container, obj)


def swift_path(request: web.Request) -> SwiftPath:
    return request[PATH]


async def authorize(request: web.Request, container_info: InfoGetter | None = None) -> None:
    await request[AUTH].authorize(request, container_info)
