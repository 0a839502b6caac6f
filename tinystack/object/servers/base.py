"""What the three storage servers share: the backend path, device lookup, the node's handles (settings, rings, an
HTTP session for the updates one server sends another), the app wrapper that turns errors into statuses, and the
same handlers and error handling as an entry for a proxy in this process (``local.py``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from tinystack.core import errors
from tinystack.object import policies
from tinystack.object.common import status_error
from tinystack.object.local import LocalRequest, Served
from tinystack.object.servers.iothreads import IoThreads
from tinystack.object.settings import ObjectSettings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

# Threads for the node's blocking disk work. Most of their time is spent waiting in fsync, so far more of them
# than cores: concurrent PUTs to one device then fsync together, and ext4 folds their journal commits into one
# (a group commit), where the event loop's default pool (cores + 4) would queue them one after another.
IO_THREADS = 32
MAX_ROOTS = 1024  # device names whose path is kept


@dataclass
class NodeContext:
    """One storage node's handles, shared by its servers and its updater."""

    settings: ObjectSettings
    rings: dict[str, Any] = field(default_factory=dict)  # "account" | "container" | "object" -> Ring
    session: aiohttp.ClientSession | None = None
    updates: Any = None  # updates.UpdateBatcher, made at the first object update
    io: IoThreads = field(default_factory=lambda: IoThreads(IO_THREADS, "object-io"))
    _roots: dict[str, Path] = field(default_factory=dict)

    def device_path(self, device: str) -> Path:
        """Where ``device`` is, without looking whether it is there (400 for a name that is no device's)."""
        root = self._roots.get(device)
        if root is None:
            if not device or "/" in device or device.startswith("."):
                raise status_error(400, f"Invalid device {device!r}")
            root = self.settings.devices / device
            if len(self._roots) < MAX_ROOTS:
                self._roots[device] = root
        return root

    def device_root(self, device: str) -> Path:
        root = self.device_path(device)
        # Looked at on every write (a device taken away answers 507 at once, and is not made anew); os.path on
        # the kept string is a quarter of what pathlib's is_dir costs.
        if not os.path.isdir(str(root)):
            raise status_error(507, f"Device {device} is not mounted here")
        return root

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the node's I/O threads (blocking disk work: fsync, reads that may miss the cache)."""
        return await self.io.run(fn, *args)

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


def _dispatcher(handlers: dict[str, Handler]) -> Handler:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        handler = handlers.get(request.method)
        if handler is None:
            raise status_error(405, f"{request.method} not allowed")
        return await handler(request)

    return dispatch


def build_app(handlers: dict[str, Handler]) -> web.Application:
    """An app routing every path by method to ``handlers``."""
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", _dispatcher(handlers))
    return app


def serve_local(handlers: dict[str, Handler]) -> Served:
    """What ``build_app(handlers)`` does with a request, for requests made in this process: the same dispatch,
    handlers and error statuses, without the HTTP messages."""
    dispatch = _dispatcher(handlers)

    async def entry(request: LocalRequest) -> web.StreamResponse:
        # The handlers read only what LocalRequest has of a web.Request (method, paths, query, headers, content).
        try:
            return await _errors(cast(web.Request, request), dispatch)
        except web.HTTPException as exc:
            return web.Response(status=exc.status, text=exc.text)

    return entry


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
