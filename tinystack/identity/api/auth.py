"""``/v3/auth/*`` and the legacy ``POST /v2.0/tokens``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, query_bool, read_json
from tinystack.identity import catalog, roles, schemas, views
from tinystack.identity.api.common import base_url
from tinystack.identity.models import Domain, Project
from tinystack.identity.service import IdentityService
from tinystack.identity.timeutil import iso


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
        payload = await self.svc.authenticator.authenticate(body["auth"])
        token = self.svc.tokens.issue(payload)
        try:
            validated = self.svc.tokens.validate(token)
        except errors.NotFound:
            raise errors.Unauthorized("The request you have made requires authentication.") from None
        text = validated.render(with_catalog=not query_bool(request, "nocatalog"))
        return web.Response(text=text, status=201, content_type="application/json",
                            headers={"X-Subject-Token": token})

    def _subject(self, request: web.Request) -> Any:
        subject = request.headers.get("X-Subject-Token")
        if not subject:
            raise errors.BadRequest("X-Subject-Token header is required.")
        validated = self.svc.tokens.validate(subject)
        rule = {"GET": "identity:validate_token", "HEAD": "identity:check_token"}.get(request.method,
                                                                                        "identity:revoke_token")
        self.svc.enforce(ctx(request), rule, {"target.token.user_id": validated.payload.user_id})
        return validated

    async def validate(self, request: web.Request) -> web.Response:
        validated = self._subject(request)
        text = validated.render(with_catalog=not query_bool(request, "nocatalog"))
        return web.Response(text=text, content_type="application/json",
                            headers={"X-Subject-Token": request.headers["X-Subject-Token"]})

    async def check(self, request: web.Request) -> web.Response:
        self._subject(request)
        return empty(200, {"X-Subject-Token": request.headers["X-Subject-Token"]})

    async def revoke(self, request: web.Request) -> web.Response:
        validated = self._subject(request)
        with self.svc.write() as s:
            self.svc.tokens.revoke(s, audit_id=validated.payload.audit_ids[0])
        return empty()

    async def catalog(self, request: web.Request) -> web.Response:
        c = ctx(request)
        if c.project_id is None and c.domain_id is None and not c.is_system:
            raise errors.Forbidden("The catalog is only available to scoped tokens.")
        with self.svc.read() as s:
            entries = catalog.render_v3(catalog.load(s), c.project_id, c.user_id)
        return json_response({"catalog": entries, "links": views.link(base_url(request), "auth/catalog")})

    async def projects(self, request: web.Request) -> web.Response:
        c = ctx(request)
        base = base_url(request)
        with self.svc.read() as s:
            ids = roles.projects_with_roles(s, c.user_id)
            found = list(s.scalars(select(Project).where(Project.id.in_(ids), Project.enabled.is_(True)))) if ids else []
            items = [views.project(base, p) for p in found]
        return json_response(views.collection(base, "auth/projects", "projects", items))

    async def domains(self, request: web.Request) -> web.Response:
        c = ctx(request)
        base = base_url(request)
        with self.svc.read() as s:
            ids = roles.domains_with_roles(s, c.user_id)
            found = list(s.scalars(select(Domain).where(Domain.id.in_(ids), Domain.enabled.is_(True)))) if ids else []
            items = [views.domain(base, d) for d in found]
        return json_response(views.collection(base, "auth/domains", "domains", items))

    async def system(self, request: web.Request) -> web.Response:
        c = ctx(request)
        with self.svc.read() as s:
            system = [{"all": True}] if roles.has_system_roles(s, c.user_id) else []
        return json_response({"system": system, "links": views.link(base_url(request), "auth/system")})

    async def issue_v2(self, request: web.Request) -> web.Response:
        """Keystone v2.0 tokens, for the seeds' walkthroughs: passwordCredentials or token, with a tenant."""
        body = await read_json(request, schemas.AUTH_V2)
        auth = body["auth"]
        tenant: dict[str, Any] | None = None
        if "tenantId" in auth:
            tenant = {"id": auth["tenantId"]}
        elif "tenantName" in auth:
            tenant = {"name": auth["tenantName"], "domain": {"id": "default"}}
        if "passwordCredentials" in auth:
            creds = auth["passwordCredentials"]
            identity = {"methods": ["password"], "password": {"user": {
                "name": creds["username"], "domain": {"id": "default"}, "password": creds["password"]}}}
        else:
            identity = {"methods": ["token"], "token": {"id": auth["token"]["id"]}}
        v3 = {"identity": identity, "scope": {"project": tenant} if tenant else "unscoped"}
        payload = await self.svc.authenticator.authenticate(v3)
        token = self.svc.tokens.issue(payload)
        try:
            validated = self.svc.tokens.validate(token)
        except errors.NotFound:
            raise errors.Unauthorized("The request you have made requires authentication.") from None
        c = validated.ctx
        with self.svc.read() as s:
            service_catalog = catalog.render_v2(catalog.load(s), c.project_id, c.user_id) if c.project_id else []
        token_doc: dict[str, Any] = {"id": token, "issued_at": iso(payload.issued_at), "expires": iso(payload.expires_at),
                                     "audit_ids": list(payload.audit_ids)}
        if c.project_id:
            token_doc["tenant"] = {"id": c.project_id, "name": c.project_name, "enabled": True, "description": None}
        access = {
            "token": token_doc,
            "serviceCatalog": service_catalog,
            "user": {"id": c.user_id, "name": c.user_name, "username": c.user_name, "roles_links": [],
                     "roles": [{"name": r} for r in c.roles]},
            "metadata": {"is_admin": 0, "roles": list(c.role_ids)},
        }
        return json_response({"access": access})


def routes(svc: IdentityService) -> list[Route]:
    return AuthAPI(svc).routes()
