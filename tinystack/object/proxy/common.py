"""What the controllers share: the proxy's handles, response headers from a backend answer, and errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tinystack.object.common import status_error
from tinystack.object.policies import INDEX_HEADER, Policy
from tinystack.object.proxy.backend import Backend
from tinystack.object.proxy.info import InfoCache
from tinystack.object.settings import ObjectSettings

# Backend headers that never reach a client.
HIDDEN_PREFIXES = ("x-backend-", "x-object-sysmeta-", "x-container-sysmeta-", "x-account-sysmeta-",
                   "x-object-transient-sysmeta-")
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


@dataclass
class Proxy:
    settings: ObjectSettings
    backend: Backend
    info: InfoCache
    # The controllers' operations the middleware reuses (check_put, object_headers, store, copy): the
    # middleware sits below proxy/ in the import layers, so app.build hands them over here.
    ops: Any = None


async def object_policy(proxy: Proxy, account: str, container: str) -> tuple[Policy, dict[str, str]]:
    """The storage policy of a container's objects and the header that names it to the object servers."""
    info = await proxy.info.get(account, container)
    policy = proxy.settings.policy(int(info.get("policy", 0)))
    return policy, {INDEX_HEADER: str(policy.index)}


def client_headers(headers: Any, keep_length: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        low = key.lower()
        if low.startswith(HIDDEN_PREFIXES) or (low in HOP and not (keep_length and low == "content-length")):
            continue
        if low in ("x-put-timestamp",):
            continue
        out[key] = value
    return out


def fail(status: int) -> web.Response:
    raise status_error(status, {404: "The resource could not be found.", 409: "There was a conflict when trying to "
                                "complete your request.", 503: "The server is currently unavailable. Please try again "
                                "at a later time.", 412: "A precondition failed.", 422: "The ETag does not match the "
                                "body.", 499: "The client disconnected."}.get(status, "The request failed."))


def request_meta(request: web.Request, target: str) -> dict[str, str]:
    """The metadata and ACL headers a client sends for an account or container."""
    out = {}
    for key, value in request.headers.items():
        low = key.lower()
        if (low.startswith((f"x-{target}-meta-", f"x-remove-{target}-")) or low in (
                f"x-{target}-read", f"x-{target}-write", "x-versions-location", "x-history-location",
                "x-remove-versions-location", "x-remove-history-location")):
            out[key] = value
    return out
