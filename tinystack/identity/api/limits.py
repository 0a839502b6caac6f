"""Unified limits as Keystone serves them: ``/v3/registered_limits``, ``/v3/limits`` and ``/v3/limits/model``."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import limit_schemas as ls
from tinystack.identity import views
from tinystack.identity.api.common import base_url, listing, with_head
from tinystack.identity.service import IdentityService

_REGISTERED_FILTERS = ("service_id", "region_id", "resource_name")
_LIMIT_FILTERS = (*_REGISTERED_FILTERS, "project_id", "domain_id")


class LimitsAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return with_head([
            Route("POST", "/v3/registered_limits", self.create_registered),
            Route("GET", "/v3/registered_limits", self.list_registered),
            Route("GET", "/v3/registered_limits/{limit_id}", self.get_registered),
            Route("PATCH", "/v3/registered_limits/{limit_id}", self.update_registered),
            Route("DELETE", "/v3/registered_limits/{limit_id}", self.delete_registered),
            Route("GET", "/v3/limits/model", self.model),
            Route("POST", "/v3/limits", self.create_limits),
            Route("GET", "/v3/limits", self.list_limits),
            Route("GET", "/v3/limits/{limit_id}", self.get_limit),
            Route("PATCH", "/v3/limits/{limit_id}", self.update_limit),
            Route("DELETE", "/v3/limits/{limit_id}", self.delete_limit),
        ])

    # --- registered limits -----------------------------------------------------------------------

    async def create_registered(self, request: web.Request) -> web.Response:
        bodies = (await read_json(request, ls.REGISTERED_CREATE))["registered_limits"]
        made = await self.svc.limits.create_registered(ctx(request), bodies)
        base = base_url(request)
        return json_response({"registered_limits": [views.registered_limit(base, r) for r in made]}, 201)

    async def list_registered(self, request: web.Request) -> web.Response:
        filters = {k: request.query.get(k) for k in _REGISTERED_FILTERS}
        found = self.svc.limits.list_registered(ctx(request), filters)
        return listing(request, "registered_limits", [views.registered_limit(base_url(request), r) for r in found])

    async def get_registered(self, request: web.Request) -> web.Response:
        found = self.svc.limits.get_registered(ctx(request), request.match_info["limit_id"])
        return json_response({"registered_limit": views.registered_limit(base_url(request), found)})

    async def update_registered(self, request: web.Request) -> web.Response:
        body = (await read_json(request, ls.REGISTERED_UPDATE))["registered_limit"]
        found = await self.svc.limits.update_registered(ctx(request), request.match_info["limit_id"], body)
        return json_response({"registered_limit": views.registered_limit(base_url(request), found)})

    async def delete_registered(self, request: web.Request) -> web.Response:
        await self.svc.limits.delete_registered(ctx(request), request.match_info["limit_id"])
        return empty()

    # --- limits ----------------------------------------------------------------------------------

    async def model(self, request: web.Request) -> web.Response:
        return json_response({"model": self.svc.limits.model(ctx(request))})

    async def create_limits(self, request: web.Request) -> web.Response:
        bodies = (await read_json(request, ls.LIMITS_CREATE))["limits"]
        made = await self.svc.limits.create_limits(ctx(request), bodies)
        return json_response({"limits": [views.limit(base_url(request), lim) for lim in made]}, 201)

    async def list_limits(self, request: web.Request) -> web.Response:
        filters = {k: request.query.get(k) for k in _LIMIT_FILTERS}
        found = self.svc.limits.list_limits(ctx(request), filters)
        return listing(request, "limits", [views.limit(base_url(request), lim) for lim in found])

    async def get_limit(self, request: web.Request) -> web.Response:
        found = self.svc.limits.get_limit(ctx(request), request.match_info["limit_id"])
        return json_response({"limit": views.limit(base_url(request), found)})

    async def update_limit(self, request: web.Request) -> web.Response:
        body = (await read_json(request, ls.LIMIT_UPDATE))["limit"]
        found = await self.svc.limits.update_limit(ctx(request), request.match_info["limit_id"], body)
        return json_response({"limit": views.limit(base_url(request), found)})

    async def delete_limit(self, request: web.Request) -> web.Response:
        await self.svc.limits.delete_limit(ctx(request), request.match_info["limit_id"])
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return LimitsAPI(svc).routes()
