"""JSON in and out of every API: request bodies read with a size cap, parsed strictly (no NaN/Infinity, int64
integers, no lone surrogates or NUL, bounded depth) and checked against JSON schemas; JSON responses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema
from aiohttp import web

from tinystack.core import errors

MAX_JSON_BODY = 1024 * 1024


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json", headers=headers)


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
