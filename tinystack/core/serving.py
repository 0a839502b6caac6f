"""Serving a ``ServiceApp``: aiohttp's header limits, and the errors aiohttp answers before any middleware runs
(request line or header too long, malformed HTTP) rendered in the API's own fault format."""

from __future__ import annotations

import logging
import uuid

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from tinystack.core import errors
from tinystack.core.faults import FAULT, FaultRenderer

logger = logging.getLogger(__name__)

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
