"""Keystone authentication and Swift's keystone authorization: the token's project owns ``AUTH_<project_id>``
when the token carries an operator role (admin, member); ResellerAdmin may act on any account; anyone else
only through the container's ACLs. No token: 401 unless an ACL lets everyone read."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.auth import TokenValidator
from tinystack.core.web import Handler
from tinystack.object.common import status_error
from tinystack.object.middleware import acl
from tinystack.object.request import AUTH, PATH, Auth, InfoGetter

RESELLER_PREFIX = "AUTH_"
OPERATOR_ROLES = frozenset({"admin", "member"})
RESELLER_ADMIN_ROLE = "reselleradmin"


def _deny(auth: Auth) -> errors.TinyError:
    if auth.identity is None:
        return status_error(401, "This server could not verify that you are authorized to access the resource.")
    return status_error(403, "Access was denied to this resource.")


def is_owner(request: web.Request) -> bool:
    auth, path = request[AUTH], request[PATH]
    ident = auth.identity
    if ident is None:
        return False
    roles = {r.lower() for r in ident.roles}
    if RESELLER_ADMIN_ROLE in roles:
        return True
    return path.account == f"{RESELLER_PREFIX}{ident.project_id}" and bool(roles & OPERATOR_ROLES)


async def authorize(request: web.Request, info: InfoGetter | None) -> None:
    auth, path = request[AUTH], request[PATH]
    if not path.account.startswith(RESELLER_PREFIX):
        raise _deny(auth)
    if is_owner(request):
        return
    if path.container is None or info is None:
        raise _deny(auth)
    container = await info()
    read = request.method in acl.READ_METHODS
    listing = path.obj is None
    if listing and not read:
        raise _deny(auth)  # container PUT/POST/DELETE: the owner's alone
    rule = container.get("read_acl" if read else "write_acl", "")
    if read and acl.referrer_allows(rule, request.headers.get("Referer"), listing):
        return
    if auth.identity is not None and acl.identity_allows(rule, auth.identity):
        return
    raise _deny(auth)


def make(_proxy: Any, validator: TokenValidator | None = None, **_: Any) -> Any:
    @web.middleware
    async def keystone(request: web.Request, handler: Handler) -> web.StreamResponse:
        if PATH not in request or AUTH in request:
            return await handler(request)  # outside /v1, or already authorized (tempurl)
        token = request.headers.get("X-Auth-Token") or request.headers.get("X-Storage-Token")
        identity = None
        if token:
            if validator is None:
                raise status_error(401, "This service cannot validate tokens.")
            try:
                identity = validator(token)
            except (errors.Unauthorized, errors.NotFound, errors.Forbidden):
                raise status_error(401, "The token is not valid.") from None
        request[AUTH] = Auth(identity, authorize)
        return await handler(request)

    return keystone
