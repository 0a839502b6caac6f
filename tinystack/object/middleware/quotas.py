"""Account and container quotas (Swift's account_quotas and container_quotas): ``X-Account-Meta-Quota-Bytes``
(set by a ResellerAdmin only), ``X-Container-Meta-Quota-Bytes`` and ``-Quota-Count``; a PUT that would go over
gets 413."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Handler
from tinystack.object.common import status_error
from tinystack.object.request import AUTH, PATH

QUOTA_KEYS = ("x-account-meta-quota-bytes", "x-remove-account-meta-quota-bytes")


def _number(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def make(proxy: Any, **_: Any) -> Any:
    @web.middleware
    async def quotas(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.get(PATH)
        if path is None or request.method not in ("PUT", "POST", "COPY"):
            return await handler(request)
        if path.container is None and request.method == "POST":
            if any(k.lower() in QUOTA_KEYS for k in request.headers):
                ident = request[AUTH].identity
                if ident is None or "reselleradmin" not in {r.lower() for r in ident.roles}:
                    raise status_error(403, "Only a reseller admin may set an account quota.")
                value = request.headers.get("X-Account-Meta-Quota-Bytes")
                if value and _number(value) is None:
                    raise status_error(400, "Invalid bytes quota.")
        elif path.obj is None and request.method in ("PUT", "POST"):
            for key in ("X-Container-Meta-Quota-Bytes", "X-Container-Meta-Quota-Count"):
                value = request.headers.get(key)
                if value and _number(value) is None:
                    raise status_error(400, f"Invalid {key}.")
        elif path.obj is not None and request.method in ("PUT", "COPY") and await _check_object(request, path):
            try:
                return await handler(request)
            finally:
                # Counted quotas need the container's fresh counts on the next write.
                proxy.info.forget(path.account, path.container)
        return await handler(request)

    async def _check_object(request: web.Request, path: Any) -> bool:
        """Refuses an upload over a quota; True when a quota applies."""
        length = _number(request.headers.get("Content-Length")) or 0
        if request.method == "COPY" or "X-Copy-From" in request.headers:
            return False  # the copy's size is known only to the copy itself
        target = path
        container = await proxy.info.get(target.account, target.container)
        if container["status"] < 300:
            quota_bytes = _number(container["meta"].get("quota-bytes"))
            quota_count = _number(container["meta"].get("quota-count"))
            if quota_bytes is not None and container["bytes"] + length > quota_bytes:
                raise status_error(413, "Upload exceeds quota.")
            if quota_count is not None and container["object_count"] + 1 > quota_count:
                raise status_error(413, "Upload exceeds quota.")
        else:
            quota_bytes = quota_count = None
        account = await proxy.info.get(target.account)
        quota = _number(account["meta"].get("quota-bytes"))
        if quota is not None and account["bytes"] + length > quota:
            raise status_error(413, "Upload exceeds quota.")
        return quota_bytes is not None or quota_count is not None

    return quotas
