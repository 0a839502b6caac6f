"""The HTTP layer every API shares: routing as data, request ids, token checking, microversions and the one place
where errors become each API's own fault format. JSON in and out (``jsonio``), the fault formats (``faults``),
paging and sorting parameters (``paging``) and serving (``serving``) have modules of their own; their names are
importable from here as well."""

from __future__ import annotations

import logging
import os
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from tinystack.core import errors, log, metrics, paging
from tinystack.core.auth import RequestContext, TokenValidator, access_permitted
from tinystack.core.faults import (
    FAULT,
    FaultRenderer,
    from_http_exception,
    keystone_fault,
    neutron_fault,
    nova_fault,
    placement_fault,
    plain_fault,
)
from tinystack.core.jsonio import (
    INT64_MAX,
    INT64_MIN,
    MAX_JSON_BODY,
    MAX_JSON_DEPTH,
    check_json,
    dumps,
    json_response,
    parse_json,
    read_json,
    validate,
)
from tinystack.core.paging import paginate
from tinystack.core.serving import MAX_FIELD_SIZE, MAX_LINE_SIZE, ServiceRunner

__all__ = [
    "CTX", "FAULT", "INT64_MAX", "INT64_MIN", "MAX_FIELD_SIZE", "MAX_JSON_BODY", "MAX_JSON_DEPTH", "MAX_LINE_SIZE",
    "REQUEST_ID", "VERSION", "FaultRenderer", "Handler", "Microversions", "Route", "ServiceApp", "ServiceRunner",
    "Version", "check_json", "ctx", "dumps", "empty", "json_response", "keystone_fault", "neutron_fault", "nova_fault",
    "paginate", "parse_json", "placement_fault", "plain_fault", "query_bool", "query_int", "read_json", "validate",
    "version",
]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CTX = web.RequestKey("ctx", RequestContext)
REQUEST_ID = web.RequestKey("request_id", str)


@dataclass(frozen=True)
class Route:
    """One endpoint. ``public`` routes need no token; all others get ``request["ctx"]``."""

    method: str
    path: str
    handler: Handler
    public: bool = False


# Request ids come from a generator of their own, seeded from urandom and again in a forked child, so that no
# one's random.seed() makes them repeat.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def new_request_id() -> str:
    """``req-`` and a random (version 4) UUID, as oslo's request ids, without ``uuid4``'s urandom system call
    per request, which showed on the hot object paths: an id only has to be unique, not secret."""
    return f"req-{uuid.UUID(int=_ids.getrandbits(128), version=4)}"


def empty(status: int = 204, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)


def ctx(request: web.Request) -> RequestContext:
    return request[CTX]


def query_int(request: web.Request, name: str, default: int | None = None, minimum: int = 0) -> int | None:
    """An integer query parameter (``paging.integer``, in its default words)."""
    return paging.integer(request.query.get(name), name, default, minimum)


def query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    low = raw.strip().lower()
    if low in ("", "1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise errors.BadRequest(f"Invalid value {raw!r} for query parameter {name}: not a boolean.")


# --- microversions -----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", text)
        if not m:
            raise errors.BadRequest(f"Invalid microversion {text!r}: expected major.minor.")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


VERSION = web.RequestKey("version", Version)


@dataclass(frozen=True)
class Microversions:
    """Negotiation for one service: ``OpenStack-API-Version: <service_type> X.Y`` or a legacy header."""

    service_type: str
    minimum: Version
    maximum: Version
    legacy_header: str | None = None
    unversioned_paths: tuple[str, ...] = ("/",)

    def negotiate(self, request: web.Request) -> Version:
        requested: str | None = None
        header = request.headers.get("OpenStack-API-Version")
        if header:
            for part in header.split(","):
                words = part.strip().split(None, 1)
                if len(words) == 2 and words[0].lower() == self.service_type:
                    requested = words[1]
        if requested is None and self.legacy_header:
            requested = request.headers.get(self.legacy_header)
        if requested is None:
            return self.minimum
        if requested.strip().lower() == "latest":
            return self.maximum
        version = Version.parse(requested)
        if not self.minimum <= version <= self.maximum:
            raise errors.NotAcceptable(
                f"Version {version} is not supported by the API. Minimum is {self.minimum} and maximum is {self.maximum}."
            )
        return version

    def headers(self, version: Version) -> dict[str, str]:
        out = {"OpenStack-API-Version": f"{self.service_type} {version}", "Vary": "OpenStack-API-Version"}
        if self.legacy_header:
            out[self.legacy_header] = str(version)
            out["Vary"] += f", {self.legacy_header}"
        return out


def version(request: web.Request) -> Version:
    return request[VERSION]


# --- the application ---------------------------------------------------------------------------


@dataclass
class ServiceApp:
    """Everything needed to build one API's aiohttp application."""

    name: str
    routes: Iterable[Route]
    fault: FaultRenderer
    validator: TokenValidator | None = None
    microversions: Microversions | None = None
    request_id_headers: tuple[str, ...] = ("x-openstack-request-id",)
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    client_max_size: int = MAX_JSON_BODY

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=self.client_max_size)
        app[FAULT] = self.fault
        app.router.add_route("GET", "/healthcheck", _mark_public(healthcheck))
        for route in self.routes:
            handler = route.handler
            if route.public:
                handler = _mark_public(handler)
            app.router.add_route(route.method, route.path, handler)
        for fn in self.on_startup:
            app.on_startup.append(_lifecycle(fn))
        for fn in self.on_cleanup:
            app.on_cleanup.append(_lifecycle(fn))
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        rid = request.headers.get("X-OpenStack-Request-ID") or ""
        if not rid.startswith("req-") or len(rid) != 40:
            rid = new_request_id()
        token = log.request_id.set(rid)
        request[REQUEST_ID] = rid
        extra: dict[str, str] = {}
        try:
            if (self.microversions is not None and request.path not in self.microversions.unversioned_paths
                    and request.path != "/healthcheck"):
                request[VERSION] = v = self.microversions.negotiate(request)
                extra = self.microversions.headers(v)
            if "\x00" in request.path or "\x00" in request.query_string:
                # Decoded from %00: no database text type the services use can hold it.
                raise errors.BadRequest("The request URL holds a NUL character.")
            routed = getattr(request.match_info, "http_exception", None) is None
            if routed and not getattr(request.match_info.handler, "tinystack_public", False):
                self._authenticate(request)
            response = await handler(request)
        except errors.TinyError as err:
            if err.status >= 500:
                logger.error("%s %s failed: %s", request.method, request.path, err)
            response = self.fault(err, rid, request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = self.fault(from_http_exception(exc), rid, request)
        except Exception:
            logger.exception("%s %s: unhandled error", request.method, request.path)
            response = self.fault(errors.TinyError("An unexpected error prevented the server from fulfilling your request."),
                                  rid, request)
        finally:
            log.request_id.reset(token)
        for name in self.request_id_headers:
            response.headers[name] = rid
        for name, value in extra.items():
            response.headers[name] = value
        self._measure(request, response.status, time.perf_counter() - started)
        return response

    def _measure(self, request: web.Request, status: int, seconds: float) -> None:
        # The route's template, not its path: one series per endpoint whatever the ids in the URL.
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.HTTP_REQUESTS.inc(self.name, route, request.method, str(status))
        metrics.HTTP_LATENCY.observe(seconds, self.name, route, request.method)

    def _authenticate(self, request: web.Request) -> None:
        token = request.headers.get("X-Auth-Token")
        if not token:
            raise errors.Unauthorized("The request you have made requires authentication.")
        if self.validator is None:
            raise errors.Unauthorized("This service cannot validate tokens.")
        request[CTX] = c = self.validator(token)
        if c.access_rules is not None and not access_permitted(c.access_rules, self.name, request.method, request.path):
            raise errors.Forbidden("The application credential's access rules do not allow this request.")


class Health:
    """Whether this process asks load balancers to send it no more requests (it is shutting down)."""

    draining = False


async def healthcheck(_request: web.Request) -> web.Response:
    """``GET /healthcheck`` on every API, oslo.middleware's shape: ``OK``, or 503 while the process drains."""
    if Health.draining:
        return web.Response(status=503, text="DRAINING", content_type="text/plain")
    return web.Response(text="OK", content_type="text/plain")


def _mark_public(handler: Handler) -> Handler:
    async def public(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    public.tinystack_public = True  # type: ignore[attr-defined]
    return public


def _lifecycle(fn: Callable[[], Awaitable[None]]) -> Callable[[web.Application], Awaitable[None]]:
    async def hook(_app: web.Application) -> None:
        await fn()

    return hook
