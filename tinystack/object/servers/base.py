"""What the three storage servers share: the backend path, device lookup, the node's handles (settings, rings, an
HTTP session for the updates one server sends another) and the app wrapper that turns errors into statuses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from tinystack.core import errors
from tinystack.object import policies
from tinystack.object.common import status_error
from tinystack.object.settings import ObjectSettings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class NodeContext:
    """One storage node's handles, shared by its servers and its updater."""

    settings: ObjectSettings
    rings: dict[str, Any] = field(default_factory=dict)  # "account" | "container" | "object" -> Ring
    session: aiohttp.ClientSession | None = None

    def device_root(self, device: str) -> Path:
        if not device or "/" in device or device.startswith("."):
            raise status_error(400, f"Invalid device {device!r}")
        root = self.settings.devices / device
        if not root.is_dir():
            raise status_error(507, f"Device {device} is not mounted here")
        return root

    def http(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            timeout = aiohttp.ClientTimeout(total=self.settings.node_timeout, sock_connect=self.settings.conn_timeout)
            self.session = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0),
                                                 auto_decompress=False)
        return self.session


def policy_datadir(node: NodeContext, request: web.Request) -> str:
    """The object directory of the storage policy the request names (policy 0 when it names none); 503 for a
    policy this node does not have."""
    text = request.headers.get(policies.INDEX_HEADER)
    if text is None:
        return "objects"
    try:
        index = int(text)
    except ValueError:
        raise status_error(400, f"Invalid {policies.INDEX_HEADER}: {text!r}") from None
    if policies.by_index(node.settings.policies, index) is None:
        raise status_error(503, f"No storage policy with index {index}")
    return policies.datadir(index)


@dataclass(frozen=True)
class BackendPath:
    device: str
    partition: int
    account: str
    container: str | None = None
    obj: str | None = None


def parse_path(request: web.Request, least: int, most: int) -> BackendPath:
    """``/<device>/<partition>/<account>[/<container>[/<object>]]`` (the object part may hold slashes)."""
    raw = request.raw_path.split("?", 1)[0]
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise status_error(412, "Invalid UTF8 or contains NULL") from None
    parts = path[1:].split("/", 4)
    if not least <= len(parts) <= most or any(not p for p in parts[: min(len(parts), 4)]):
        raise status_error(400, f"Invalid path: {path}")
    try:
        partition = int(parts[1])
    except ValueError:
        raise status_error(400, f"Invalid partition: {parts[1]}") from None
    rest: list[str | None] = [*parts[2:], None, None]
    return BackendPath(parts[0], partition, parts[2], rest[1], rest[2])


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.TinyError as err:
        if err.status >= 500 and err.status != 507:
            log.error("%s %s: %s", request.method, request.path, err)
        return web.Response(status=err.status, text=err.message)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("%s %s: unhandled error", request.method, request.path)
        return web.Response(status=500, text="storage server error")


def build_app(handlers: dict[str, Handler]) -> web.Application:
    """An app routing every path by method to ``handlers``."""
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024 * 1024)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        handler = handlers.get(request.method)
        if handler is None:
            raise status_error(405, f"{request.method} not allowed")
        return await handler(request)

    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def user_metadata(headers: Any, target: str, timestamp: str) -> dict[str, tuple[str, str]]:
    """The metadata headers a request sets on an account or container (``X-<target>-Meta-*``, the ``Sysmeta`` ones,
    and the few system headers Swift keeps there), each with the request's timestamp; ``X-Remove-*`` clears."""
    out: dict[str, tuple[str, str]] = {}
    prefixes = (f"x-{target}-meta-", f"x-{target}-sysmeta-")
    system = {f"x-{target}-read", f"x-{target}-write", f"x-{target}-sync-to", f"x-{target}-sync-key",
              "x-versions-location", "x-history-location"}
    for key, value in headers.items():
        low = key.lower()
        if low.startswith(f"x-remove-{target}-meta-"):
            out[f"x-{target}-meta-" + low[len(f"x-remove-{target}-meta-"):]] = ("", timestamp)
        elif low.startswith(f"x-remove-{target}-") and f"x-{target}-" + low[len(f"x-remove-{target}-"):] in system:
            out[f"x-{target}-" + low[len(f"x-remove-{target}-"):]] = ("", timestamp)
        elif low in ("x-remove-versions-location", "x-remove-history-location"):
            out[low.replace("x-remove-", "x-")] = ("", timestamp)
        elif low.startswith(prefixes) or low in system:
            out[low] = (value, timestamp)
    return out
