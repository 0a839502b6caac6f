"""Keystone's timestamp format (``2015-11-05T22:00:11.000000Z``) to and from epoch seconds."""

from __future__ import annotations

import datetime as dt

from tinystack.core import errors


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def naive_iso(ts: float | None) -> str | None:
    """Keystone renders application credential expiry naive, without the trailing Z (Tempest compares it so)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest(f"Invalid timestamp {text!r}: expected ISO 8601.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()
