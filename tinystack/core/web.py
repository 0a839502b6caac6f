"""The HTTP layer every API shares: routing as data, JSON in and out, request ids, token checking,
microversions and the one place where errors become each API's own fault format."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from tinystack.core import errors, log
from tinystack.core.auth import RequestContext, TokenValidator

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FaultRenderer = Callable[[errors.TinyError, str], web.Response]

MAX_JSON_BODY = 1024 * 1024

CTX = web.RequestKey("ctx", RequestContext)
REQUEST_ID = web.RequestKey("request_id", str)
FAULT: web.AppKey[FaultRenderer] = web.AppKey("fault")


@dataclass(frozen=True)
class Route:
    """One endpoint. ``public`` routes need no token; all others get ``request["ctx"]``."""

    method: str
    path: str
    handler: Handler
    public: bool = False


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json", headers=headers)


def empty(status: int = 204, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers)


async def read_json(request: web.Request, schema: Mapping[str, Any] | None = None) -> Any:
    """The request body as JSON, checked against ``schema``; size-limited, never partly trusted."""
    length = request.content_length
    if length is not None and length > MAX_JSON_BODY:
        raise errors.PayloadTooLarge("Request is too large.")
    raw = await request.content.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise errors.PayloadTooLarge("Request is too large.")
    body = parse_json(raw)
    if schema is not None:
        validate(body, schema)
    return body


# Limits on what a request body may hold, so that whatever it holds can be stored, encoded and compared
# everywhere after it without surprises: every database column type the services use takes a signed 64-bit
# integer, UTF-8 text without NUL (PostgreSQL refuses NUL), and no body is legitimately nested deeper than a
# handful of levels.
MAX_JSON_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_json(raw: bytes | str) -> Any:
    """Strict JSON: RFC 8259 numbers only (no NaN/Infinity), integers within int64, finite floats, strings
    that are valid Unicode without NUL, and at most ``MAX_JSON_DEPTH`` levels of nesting.

    Every violation is a ``BadRequest``: these rules hold for every API, so they live here once rather than
    in every schema (JSON Schema cannot express most of them anyway)."""
    if not raw.strip():
        raise errors.BadRequest("The request body is empty; a JSON document is required.")
    try:
        body = json.loads(raw, parse_constant=_reject_constant, parse_int=_int64, parse_float=_finite_float)
    except RecursionError:
        # The C decoder recurses once per level; a document deep enough to exhaust the stack is hostile.
        raise errors.BadRequest(f"Malformed request body: nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.BadRequest(f"Malformed request body: {exc}") from None
    check_json(body)
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int64(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"integer {text[:30]}{'...' if len(text) > 30 else ''} is out of range")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:30]} is out of range")
    return value


def check_json(doc: Any) -> None:
    """Walk a decoded document without recursion: bounded depth, and strings (keys too) that are valid
    Unicode without NUL. A lone surrogate such as ``"\\ud800"`` decodes fine but cannot be encoded."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise errors.BadRequest(f"Malformed request body: nested deeper than {MAX_JSON_DEPTH} levels.")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.BadRequest("Malformed request body: a string holds a lone UTF-16 surrogate.") from None
    if "\x00" in text:
        raise errors.BadRequest("Malformed request body: a string holds a NUL character.")


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate(body: Any, schema: Mapping[str, Any]) -> None:
    error = jsonschema.exceptions.best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        prefix = f"Invalid input for field '{where}'" if where else "Invalid input"
        raise errors.BadRequest(f"{prefix}: {error.message}")


def ctx(request: web.Request) -> RequestContext:
    return request[CTX]


def query_int(request: web.Request, name: str, default: int | None = None, minimum: int = 0) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"Invalid value {raw!r} for query parameter {name}: not an integer.") from None
    if value < minimum:
        raise errors.BadRequest(f"Invalid value {raw!r} for query parameter {name}: must be >= {minimum}.")
    if value > INT64_MAX:
        raise errors.BadRequest(f"Invalid value {raw!r} for query parameter {name}: must be <= {INT64_MAX}.")
    return value


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


def paginate(items: list[Any], limit: int | None, marker: str | None, key: Callable[[Any], str]) -> list[Any]:
    """``limit``/``marker`` over an already ordered list; an unknown marker is a 400, as Nova and Glance do."""
    if marker is not None:
        for i, item in enumerate(items):
            if key(item) == marker:
                items = items[i + 1 :]
                break
        else:
            raise errors.BadRequest(f"marker [{marker}] not found")
    return items if limit is None else items[:limit]


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


# --- fault formats -----------------------------------------------------------------------------


def keystone_fault(err: errors.TinyError, _request_id: str) -> web.Response:
    return json_response({"error": {"code": err.status, "title": err.title, "message": err.message}}, err.status)


_NOVA_KEYS = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
              406: "notAcceptable", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType",
              501: "notImplemented", 503: "serviceUnavailable"}


def nova_fault(err: errors.TinyError, _request_id: str) -> web.Response:
    """Nova's and Cinder's ``{"itemNotFound": {"code": 404, "message": ...}}``."""
    key = "overLimit" if isinstance(err, errors.OverQuota) else _NOVA_KEYS.get(err.status, "computeFault")
    return json_response({key: {"code": err.status, "message": err.message}}, err.status)


def neutron_fault(err: errors.TinyError, _request_id: str) -> web.Response:
    kind = err.details.get("type") or type(err).__name__
    return json_response({"NeutronError": {"type": kind, "message": err.message, "detail": ""}}, err.status)


def placement_fault(err: errors.TinyError, request_id: str) -> web.Response:
    body = {"status": err.status, "title": err.title, "detail": err.message, "request_id": request_id}
    if "code" in err.details:
        body["code"] = err.details["code"]
    return json_response({"errors": [body]}, err.status)


def plain_fault(err: errors.TinyError, _request_id: str) -> web.Response:
    """Glance and Swift answer errors with a short text body."""
    return web.Response(text=f"{err.status} {err.title}\n\n{err.message}\n", status=err.status, content_type="text/plain")


_AIOHTTP_STATUS = {404: errors.NotFound, 405: errors.MethodNotAllowed, 413: errors.PayloadTooLarge}


def _from_http_exception(exc: web.HTTPException) -> errors.TinyError:
    cls = _AIOHTTP_STATUS.get(exc.status, errors.BadRequest if exc.status < 500 else errors.TinyError)
    err = cls(exc.reason if exc.status != 404 else "The resource could not be found.")
    err.status = exc.status
    return err


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
        rid = request.headers.get("X-OpenStack-Request-ID") or ""
        if not rid.startswith("req-") or len(rid) != 40:
            rid = f"req-{uuid.uuid4()}"
        token = log.request_id.set(rid)
        request[REQUEST_ID] = rid
        extra: dict[str, str] = {}
        try:
            if self.microversions is not None and request.path not in self.microversions.unversioned_paths:
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
            response = self.fault(err, rid)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = self.fault(_from_http_exception(exc), rid)
        except Exception:
            logger.exception("%s %s: unhandled error", request.method, request.path)
            response = self.fault(errors.TinyError("An unexpected error prevented the server from fulfilling your request."), rid)
        finally:
            log.request_id.reset(token)
        for name in self.request_id_headers:
            response.headers[name] = rid
        for name, value in extra.items():
            response.headers[name] = value
        return response

    def _authenticate(self, request: web.Request) -> None:
        token = request.headers.get("X-Auth-Token")
        if not token:
            raise errors.Unauthorized("The request you have made requires authentication.")
        if self.validator is None:
            raise errors.Unauthorized("This service cannot validate tokens.")
        request[CTX] = self.validator(token)


def _mark_public(handler: Handler) -> Handler:
    async def public(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    public.tinystack_public = True  # type: ignore[attr-defined]
    return public


def _lifecycle(fn: Callable[[], Awaitable[None]]) -> Callable[[web.Application], Awaitable[None]]:
    async def hook(_app: web.Application) -> None:
        await fn()

    return hook


# --- serving -----------------------------------------------------------------------------------

# aiohttp's own limits on the request line and on each header line, stated here because they are part of
# what the APIs promise: anything longer is a 400 in the API's fault format (ServiceRunner), never a crash.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190


class ServiceRunner(web.AppRunner):
    """An ``AppRunner`` for a ``ServiceApp``: the header limits set, and the errors aiohttp answers itself,
    before any middleware runs (request line or header too long, malformed HTTP), rendered in the API's own
    fault format with a request id instead of aiohttp's plain text."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(app, access_log=None, handle_signals=False, max_line_size=MAX_LINE_SIZE,
                         max_field_size=MAX_FIELD_SIZE)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        fault = self.app.get(FAULT)
        if fault is not None:
            # aiohttp builds its Server privately and the Server picks the protocol class, which renders these
            # errors; re-classing the one instance is the narrowest hook it leaves.
            server.__class__ = _FaultServer
            server.fault = fault  # type: ignore[attr-defined]
        return server


class _FaultServer(web.Server):
    fault: FaultRenderer

    def __call__(self) -> RequestHandler:
        return _FaultRequestHandler(self, loop=self._loop, **self._kwargs)


class _FaultRequestHandler(RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already being sent")  # as aiohttp: the connection is broken
        rid = f"req-{uuid.uuid4()}"
        if status >= 500:
            logger.error("[%s] error handling a request from %s", rid, request.remote, exc_info=exc)
        else:
            # A client's malformed HTTP is the client's problem: worth a line, not a traceback.
            logger.info("[%s] bad HTTP request from %s: %s", rid, request.remote, exc)
        assert isinstance(self._manager, _FaultServer)
        out = self._manager.fault(_low_level_error(status, exc), rid)
        out.headers["x-openstack-request-id"] = rid
        out.force_close()  # the parser's state after such an error is unknown
        return out


def _low_level_error(status: int, exc: BaseException | None) -> errors.TinyError:
    if isinstance(exc, LineTooLong):
        err: errors.TinyError = errors.BadRequest(
            f"The request line or a header field is longer than {MAX_LINE_SIZE} bytes.")
    elif status < 500:
        err = errors.BadRequest("The request is not valid HTTP.")
    else:
        err = errors.TinyError("An unexpected error prevented the server from fulfilling your request.")
    err.status = status
    return err
