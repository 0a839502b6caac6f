"""``/v3/auth/*`` and the legacy ``POST /v2.0/tokens``."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, query_bool, read_json
from tinystack.identity import schemas, views
from tinystack.identity.api.common import base_url
from tinystack.identity.auth_ops import v2_as_v3
from tinystack.identity.service import IdentityService


class AuthAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v3/auth/tokens", self.issue, public=True),
            Route("GET", "/v3/auth/tokens", self.validate),
            Route("HEAD", "/v3/auth/tokens", self.check),
            Route("DELETE", "/v3/auth/tokens", self.revoke),
            Route("GET", "/v3/auth/catalog", self.catalog),
            Route("GET", "/v3/auth/projects", self.projects),
            Route("GET", "/v3/auth/domains", self.domains),
            Route("GET", "/v3/auth/system", self.system),
            Route("POST", "/v2.0/tokens", self.issue_v2, public=True),
        ]

    async def issue(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.AUTH)
        issued = await self.svc.auth.issue(body["auth"])
        text = issued.validated.render(with_catalog=not query_bool(request, "nocatalog"))
        return web.Response(text=text, status=201, content_type="application/json",
                            headers={"X-Subject-Token": issued.token})

    async def validate(self, request: web.Request) -> web.Response:
        validated = self.svc.auth.subject(ctx(request), request.headers.get("X-Subject-Token"), request.method)
        text = validated.render(with_catalog=not query_bool(request, "nocatalog"))
        return web.Response(text=text, content_type="application/json",
                            headers={"X-Subject-Token": request.headers["X-Subject-Token"]})

    async def check(self, request: web.Request) -> web.Response:
        self.svc.auth.subject(ctx(request), request.headers.get("X-Subject-Token"), request.method)
        return empty(200, {"X-Subject-Token": request.headers["X-Subject-Token"]})

    async def revoke(self, request: web.Request) -> web.Response:
        await self.svc.auth.revoke(ctx(request), request.headers.get("X-Subject-Token"))
        return empty()

    async def catalog(self, request: web.Request) -> web.Response:
        entries = self.svc.auth.catalog(ctx(request))
        return json_response({"catalog": entries, "links": views.link(base_url(request), "auth/catalog")})

    async def projects(self, request: web.Request) -> web.Response:
        base = base_url(request)
        items = [views.project(base, p) for p in self.svc.auth.projects(ctx(request))]
        return json_response(views.collection(base, "auth/projects", "projects", items))

    async def domains(self, request: web.Request) -> web.Response:
        base = base_url(request)
        items = [views.domain(base, d) for d in self.svc.auth.domains(ctx(request))]
        return json_response(views.collection(base, "auth/domains", "domains", items))

    async def system(self, request: web.Request) -> web.Response:
        system = [{"all": True}] if self.svc.auth.system(ctx(request)) else []
        return json_response({"system": system, "links": views.link(base_url(request), "auth/system")})

    async def issue_v2(self, request: web.Request) -> web.Response:
        """Keystone v2.0 tokens, for the seeds' walkthroughs: passwordCredentials or token, with a tenant."""
        body = await read_json(request, schemas.AUTH_V2)
        issued = await self.svc.auth.issue(v2_as_v3(body["auth"]), v2=True)
        return json_response({"access": views.v2_access(issued.token, issued.payload, issued.validated, issued.catalog_v2)})


def routes(svc: IdentityService) -> list[Route]:
    return AuthAPI(svc).routes()
