"""Errors with Glance's status codes where they differ from the shared hierarchy."""

from __future__ import annotations

from tinystack.core import errors


class QuotaExceeded(errors.OverQuota):
    """Glance refuses what would exceed a quota or limit with 413, not 403."""

    status = 413
    title = "Request Entity Too Large"


class InvalidImageData(errors.UnsupportedMediaType):
    """The uploaded data failed format inspection (Glance's InvalidImageData, rendered as 415)."""
