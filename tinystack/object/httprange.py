"""HTTP semantics the object server applies to a stored object: Range (single and multiple, RFC 9110 as Swift
reads it) and the conditional headers If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping

from tinystack.object.common import status_error


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ranges as (start, end-exclusive); None means the whole object (no header, or one Swift
    ignores as malformed); 416 when the header is valid but no range fits."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    wanted: list[tuple[int | None, int | None]] = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash:
            return None
        try:
            a = int(first) if first.strip() else None
            b = int(last) if last.strip() else None
        except ValueError:
            return None
        if (a is None and b is None) or (a is not None and b is not None and b < a) or (a is not None and a < 0):
            return None
        wanted.append((a, b))
    if len(wanted) > 100:
        return None
    out: list[tuple[int, int]] = []
    for a, b in wanted:
        if a is None:
            assert b is not None
            if b == 0:
                continue
            out.append((max(0, size - b), size))
        elif a < size:
            out.append((a, size if b is None else min(b + 1, size)))
    if not out:
        raise status_error(416, "Requested Range Not Satisfiable")
    return out


def http_date(timestamp: str) -> str:
    """Last-Modified: the timestamp rounded up to a whole second, as Swift does."""
    return email.utils.formatdate(math.ceil(float(timestamp)), usegmt=True)


def _etags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]


def check_conditions(headers: Mapping[str, str], etag: str, timestamp: str, method: str) -> int | None:
    """The status a conditional request gets instead of the object (304 or 412), or None to serve it."""
    if_match = headers.get("If-Match")
    if if_match is not None:
        tags = _etags(if_match)
        if "*" not in tags and etag not in tags:
            return 412
    if_none = headers.get("If-None-Match")
    if if_none is not None:
        tags = _etags(if_none)
        if "*" in tags or etag in tags:
            return 304 if method in ("GET", "HEAD") else 412
    modified = math.ceil(float(timestamp))
    since = _date(headers.get("If-Modified-Since"))
    if since is not None and if_none is None and modified <= since:
        return 304
    unmodified = _date(headers.get("If-Unmodified-Since"))
    if unmodified is not None and if_match is None and modified > unmodified:
        return 412
    return None


def _date(text: str | None) -> float | None:
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return parsed.timestamp()
