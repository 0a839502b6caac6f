"""Small helpers shared by the identity handlers."""

from __future__ import annotations

from aiohttp import web


def base_url(request: web.Request) -> str:
    """The public origin the caller used, for ``links`` (Keystone's public_endpoint)."""
    return f"{request.scheme}://{request.host}"
