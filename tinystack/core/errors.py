"""The error hierarchy every service raises; each API flavour renders it in one place."""

from __future__ import annotations

from typing import Any


class TinyError(Exception):
    """Base of all expected errors. ``status`` is the HTTP status, ``title`` a short name."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.details = details

    def __str__(self) -> str:
        return self.message


class BadRequest(TinyError):
    status = 400
    title = "Bad Request"


class Unauthorized(TinyError):
    status = 401
    title = "Unauthorized"


class Forbidden(TinyError):
    status = 403
    title = "Forbidden"


class PolicyNotAuthorized(Forbidden):
    """A policy rule refused the action."""


class NotFound(TinyError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(TinyError):
    status = 405
    title = "Method Not Allowed"


class NotAcceptable(TinyError):
    status = 406
    title = "Not Acceptable"


class Conflict(TinyError):
    status = 409
    title = "Conflict"


class Gone(TinyError):
    status = 410
    title = "Gone"


class PayloadTooLarge(TinyError):
    status = 413
    title = "Request Entity Too Large"


class OverQuota(Forbidden):
    """Quota exceeded. Nova and Neutron render it 403 (or 413 for some), Glance 413."""


class UnsupportedMediaType(TinyError):
    status = 415
    title = "Unsupported Media Type"


class RangeNotSatisfiable(TinyError):
    status = 416
    title = "Requested Range Not Satisfiable"


class ServiceUnavailable(TinyError):
    status = 503
    title = "Service Unavailable"


class NotImplementedYet(TinyError):
    """A valid OpenStack request that tinystack does not support: 501, never a silent success."""

    status = 501
    title = "Not Implemented"
