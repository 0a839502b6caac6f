"""The fault formats of the OpenStack APIs (Keystone, Nova/Cinder, Neutron, Placement, Glance/Swift plain text):
each API renders every error through one of these, in one place (``ServiceApp``, ``ServiceRunner``). A renderer
gets the failed request too, so a format that depends on it (Glance's, chosen by Accept) is rendered directly."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from tinystack.core import errors
from tinystack.core.jsonio import json_response


class FaultRenderer(Protocol):
    """One API's fault format. ``request`` is the request that failed; None for the errors aiohttp answers
    before a request exists (a malformed request line, ``serving.py``)."""

    def __call__(self, err: errors.TinyError, request_id: str, request: web.BaseRequest | None = None, /
                 ) -> web.Response: ...


# Where an application keeps its fault renderer, for the errors answered outside its middleware (serving.py).
FAULT: web.AppKey[FaultRenderer] = web.AppKey("fault")


def keystone_fault(err: errors.TinyError, _request_id: str, _request: web.BaseRequest | None = None) -> web.Response:
    return json_response({"error": {"code": err.status, "title": err.title, "message": err.message}}, err.status)


_NOVA_KEYS = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
              406: "notAcceptable", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType",
              501: "notImplemented", 503: "serviceUnavailable"}


def nova_fault(err: errors.TinyError, _request_id: str, _request: web.BaseRequest | None = None) -> web.Response:
    """Nova's and Cinder's ``{"itemNotFound": {"code": 404, "message": ...}}``."""
    key = "overLimit" if isinstance(err, errors.OverQuota) else _NOVA_KEYS.get(err.status, "computeFault")
    return json_response({key: {"code": err.status, "message": err.message}}, err.status)


def neutron_fault(err: errors.TinyError, _request_id: str, _request: web.BaseRequest | None = None) -> web.Response:
    kind = err.details.get("type") or type(err).__name__
    return json_response({"NeutronError": {"type": kind, "message": err.message, "detail": ""}}, err.status)


def placement_fault(err: errors.TinyError, request_id: str, _request: web.BaseRequest | None = None
                    ) -> web.Response:
    body = {"status": err.status, "title": err.title, "detail": err.message, "request_id": request_id}
    if "code" in err.details:
        body["code"] = err.details["code"]
    return json_response({"errors": [body]}, err.status)


def plain_fault(err: errors.TinyError, _request_id: str, _request: web.BaseRequest | None = None) -> web.Response:
    """Glance and Swift answer errors with a short text body."""
    return web.Response(text=f"{err.status} {err.title}\n\n{err.message}\n", status=err.status, content_type="text/plain")


_AIOHTTP_STATUS = {404: errors.NotFound, 405: errors.MethodNotAllowed, 413: errors.PayloadTooLarge}


def from_http_exception(exc: web.HTTPException) -> errors.TinyError:
    cls = _AIOHTTP_STATUS.get(exc.status, errors.BadRequest if exc.status < 500 else errors.TinyError)
    err = cls(exc.reason if exc.status != 404 else "The resource could not be found.")
    err.status = exc.status
    return err
