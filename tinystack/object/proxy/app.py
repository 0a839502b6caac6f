"""The proxy application: the middleware pipeline (middleware/ORDER) over a router that hands each
``/v1/...`` request to the account, container or object controller, plus /info. It runs the storage node of
``tinystack up`` as part of its start, so the rings exist before the first request."""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from tinystack.core.auth import TokenValidator
from tinystack.core.jsonio import json_response
from tinystack.core.web import Route, ServiceApp, plain_fault
from tinystack.object import constraints
from tinystack.object.common import status_error
from tinystack.object.middleware import ORDER, bulk
from tinystack.object.proxy import accounts, containers, objects, objects_put
from tinystack.object.proxy.backend import Backend
from tinystack.object.proxy.common import Proxy
from tinystack.object.proxy.info import InfoCache
from tinystack.object.request import PATH
from tinystack.object.settings import ObjectSettings

Controller = Callable[[Proxy, web.Request], Awaitable[web.StreamResponse]]

CONTROLLERS: dict[str, dict[str, Controller]] = {
    "account": {"GET": accounts.head_or_get, "HEAD": accounts.head_or_get, "POST": accounts.post},
    "container": {"GET": containers.head_or_get, "HEAD": containers.head_or_get, "PUT": containers.put,
                  "POST": containers.post, "DELETE": containers.delete},
    "object": {"GET": objects.get, "HEAD": objects.get, "PUT": objects.put, "POST": objects.post,
               "DELETE": objects.delete, "COPY": objects.copy_method},
}


async def _swift_headers(request: web.Request, response: web.StreamResponse) -> None:
    """What Swift puts on every answer, errors and streamed bodies included (so it is set just before the
    headers go out): a transaction id in Swift's form, also as the request id, and a Content-Type."""
    # A transaction id names a request in logs; it need not be unguessable, so no urandom call per answer.
    trans_id = f"tx{random.getrandbits(84):021x}-{int(time.time()):010x}"
    response.headers["X-Trans-Id"] = response.headers["X-Openstack-Request-Id"] = trans_id
    if "Content-Type" not in response.headers:
        response.headers["Content-Type"] = "text/html; charset=UTF-8"


METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "OPTIONS")


class SwiftApp(ServiceApp):
    """A ServiceApp with the proxy's middleware pipeline inside the shared one (fault format)."""

    pipeline: list[Any]

    def build(self) -> web.Application:
        app = super().build()
        app.middlewares.extend(self.pipeline)
        app.on_response_prepare.append(_swift_headers)
        return app


def build(settings: ObjectSettings, validator: TokenValidator | None,
          on_startup: list[Callable[[], Awaitable[None]]] | None = None,
          on_cleanup: list[Callable[[], Awaitable[None]]] | None = None) -> ServiceApp:
    backend = Backend(settings)
    proxy = Proxy(settings, backend, InfoCache(backend, settings.info_cache_seconds),
                  SimpleNamespace(check_put=objects_put.check_put, object_headers=objects_put.object_headers,
                                  store=objects_put.store, copy=objects.copy))

    async def dispatch(request: web.Request) -> web.StreamResponse:
        path = request.get(PATH)
        if path is None:
            raise status_error(404, "The resource could not be found.")
        kind = "object" if path.obj is not None else "container" if path.container is not None else "account"
        handler = CONTROLLERS[kind].get(request.method)
        if handler is None:
            raise status_error(405, f"{request.method} is not allowed on this resource.")
        return await handler(proxy, request)

    async def info(_request: web.Request) -> web.Response:
        swift = constraints.info(settings.max_file_size, settings.container_listing_limit,
                                 settings.account_listing_limit)
        swift["policies"] = [{"name": p.name, "aliases": p.name,
                              **({"default": True} if p.default else {})} for p in settings.policies]
        return json_response({"swift": swift,
                              "tempauth": {}, "keystoneauth": {}, "account_quotas": {}, "container_quotas": {},
                              "cors": {}, "slo": {"max_manifest_segments": 1000,
                                                  "max_manifest_size": 8388608, "min_segment_size": 1},
                              "versioned_writes": {"allowed_flags": ["history", "stack"]},
                              "tempurl": {"methods": ["GET", "HEAD", "PUT", "POST", "DELETE"],
                                          "allowed_digests": ["sha1", "sha256", "sha512"]},
                              "formpost": {"allowed_digests": ["sha1", "sha256", "sha512"]}, **bulk.INFO})

    async def close() -> None:
        await backend.close()

    # Public at the router: Swift's keystone auth (middleware/keystone.py) decides, not a policy rule, since
    # container ACLs may open a request to other projects or to anyone.
    routes = [Route("GET", "/info", info, public=True), Route("HEAD", "/info", info, public=True),
              *(Route(method, "/{tail:.*}", dispatch, public=True) for method in METHODS)]
    app = SwiftApp("object", routes, plain_fault, validator=validator,
                   request_id_headers=(),
                   on_startup=list(on_startup or []), on_cleanup=[close, *(on_cleanup or [])])
    app.pipeline = [importlib.import_module(f"tinystack.object.middleware.{name}").make(proxy, validator=validator)
                    for name in ORDER]
    return app
