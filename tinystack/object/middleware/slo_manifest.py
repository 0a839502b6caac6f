"""Static large object manifests: parsing what a client PUTs with ``?multipart-manifest=put`` (a JSON list of
``{path, etag, size_bytes[, range]}``) and the stored form (``name``, ``hash``, ``bytes``, ``range``) the
middleware reads back, plus the SLO's ETag."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import unquote

from tinystack.object.common import status_error

MAX_SEGMENTS = 1000
MAX_MANIFEST_BYTES = 8 * 1024 * 1024


def parse_put(body: bytes) -> list[dict[str, Any]]:
    """The client's segment list, checked for shape (400 with Swift's wording when it is wrong)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise status_error(400, "Manifest must be valid JSON.\n") from None
    if not isinstance(data, list) or not data:
        raise status_error(400, "Manifest must be a non-empty JSON list of segments.\n")
    if len(data) > MAX_SEGMENTS:
        raise status_error(400, f"Too many segments in the manifest (at most {MAX_SEGMENTS}).\n")
    errors: list[str] = []
    for i, seg in enumerate(data):
        if not isinstance(seg, dict):
            errors.append(f"Index {i}: not a JSON object")
            continue
        extra = set(seg) - {"path", "etag", "size_bytes", "range"}
        if extra:
            errors.append(f"Index {i}: extraneous keys {', '.join(sorted(map(repr, extra)))}")
        path = seg.get("path")
        if not isinstance(path, str) or path.lstrip("/").count("/") < 1 or not all(
                path.lstrip("/").partition("/")[::2]):
            errors.append(f"Index {i}: path does not refer to an object. Path must be of the form "
                          "/container/object.")
        if seg.get("etag") is not None and not isinstance(seg["etag"], str):
            errors.append(f"Index {i}: etag must be a string or null")
        size = seg.get("size_bytes")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            errors.append(f"Index {i}: size_bytes must be an integer or null")
        if seg.get("range") is not None and parse_range(seg["range"], None) is None:
            errors.append(f"Index {i}: invalid range")
    if errors:
        raise status_error(400, "Errors:\n" + "\n".join(errors) + "\n")
    return data


def split_path(path: str) -> tuple[str, str]:
    container, _, obj = unquote(path).lstrip("/").partition("/")
    return container, obj


def parse_range(text: Any, size: int | None) -> tuple[int, int] | None:
    """A segment's ``range`` ("a-b", "a-", "-n") as start and end (exclusive); None when invalid or, with the
    segment's ``size`` known, outside it."""
    if not isinstance(text, str) or text.count("-") != 1:
        return None
    first, last = (p.strip() for p in text.split("-"))
    try:
        if not first:
            if size is None:
                return (0, 0) if last.isdigit() else None
            n = int(last)
            return (max(size - n, 0), size) if n > 0 else None
        start = int(first)
        end = int(last) + 1 if last else (size if size is not None else start + 1)
    except ValueError:
        return None
    if start < 0 or end <= start or (size is not None and start >= size):
        return None
    return start, min(end, size) if size is not None else end


def slo_etag(stored: list[dict[str, Any]]) -> str:
    """The MD5 of the segments' ETags (with ``:range;`` after a ranged one), as Swift computes it."""
    md5 = hashlib.md5(usedforsecurity=False)
    for seg in stored:
        md5.update(seg["hash"].encode())
        if seg.get("range"):
            md5.update(f":{seg['range']};".encode())
    return md5.hexdigest()


def segment_span(seg: dict[str, Any]) -> tuple[int, int]:
    """The bytes of its object that a stored segment contributes (start, end exclusive)."""
    if seg.get("range"):
        span = parse_range(seg["range"], int(seg["bytes"]))
        if span is not None:
            return span
    return 0, int(seg["bytes"])


def total_size(stored: list[dict[str, Any]]) -> int:
    return sum(end - start for start, end in map(segment_span, stored))


def load_stored(body: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise status_error(503, "The large object's manifest is unreadable.") from None
    if not isinstance(data, list):
        raise status_error(503, "The large object's manifest is unreadable.")
    return data
