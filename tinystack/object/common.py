"""What every part of object storage shares: Swift's timestamps, path hashing and the suffix/partition layout."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import quote

from tinystack.core import errors


def normalize_timestamp(value: float | str) -> str:
    """Swift's fixed-width timestamp (``0001700000000.12345``): sorts as text the way it sorts as a number."""
    return f"{float(value):016.5f}"


def now() -> str:
    return normalize_timestamp(time.time())


def parse_timestamp(text: str | None, name: str = "X-Timestamp") -> str:
    if text is None:
        raise errors.BadRequest(f"Missing {name} header")
    try:
        value = float(text.split("_", 1)[0])
    except ValueError:
        raise errors.BadRequest(f"Invalid {name} header: {text!r}") from None
    if not 0 <= value < 10**10:
        raise errors.BadRequest(f"Invalid {name} header: {text!r}")
    return normalize_timestamp(value)


def hash_path(prefix: str, suffix: str, account: str, container: str | None = None, obj: str | None = None) -> str:
    """The md5 hex of ``/account[/container[/object]]`` between the cloud's secrets, as Swift names its files."""
    parts = [account] + [p for p in (container, obj) if p is not None]
    return hashlib.md5(f"{prefix}/{'/'.join(parts)}{suffix}".encode(), usedforsecurity=False).hexdigest()


def suffix_of(name_hash: str) -> str:
    return name_hash[-3:]


def status_error(status: int, message: str) -> errors.TinyError:
    """An error carrying exactly ``status`` (Swift's codes, e.g. 411, 412, 422, 507, that have no class of their own)."""
    err = errors.TinyError(message)
    err.status = status
    err.title = _TITLES.get(status, "Error")
    return err


_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 409: "Conflict", 411: "Length Required", 412: "Precondition Failed",
           413: "Request Entity Too Large", 416: "Requested Range Not Satisfiable", 422: "Unprocessable Entity",
           499: "Client Disconnect", 503: "Service Unavailable", 507: "Insufficient Storage"}


def quote_path(*parts: str) -> str:
    """``/a/b/c`` with each part URL-quoted (object names may hold any character but NUL)."""
    return "".join("/" + quote(p, safe="/" if i == len(parts) - 1 else "") for i, p in enumerate(parts))
