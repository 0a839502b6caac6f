"""Requests on tokens and on what a token may reach (``/v3/auth/*``, the legacy v2.0 issue): authentication,
validation of a subject token under policy, revocation, and the caller's catalog, projects, domains and
system scope. Validating the caller's own token (every request's ``X-Auth-Token``) is not here: that is
``IdentityService.validate``, kept as cheap as it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.identity import catalog, endpoint_filter, roles
from tinystack.identity.fernet import TokenPayload
from tinystack.identity.models import Domain, Project
from tinystack.identity.tokens import Validated

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService

# The rule a subject-token request consults, by HTTP method.
SUBJECT_RULES = {"GET": "identity:validate_token", "HEAD": "identity:check_token", "DELETE": "identity:revoke_token"}


@dataclass(frozen=True)
class Issued:
    """A new token, what it says and its validation; ``catalog_v2`` is the v2.0 service catalog (v2.0 issue
    only)."""

    token: str
    payload: TokenPayload
    validated: Validated
    catalog_v2: list[dict[str, Any]]


def v2_as_v3(auth: dict[str, Any]) -> dict[str, Any]:
    """A v2.0 ``auth`` (passwordCredentials or token, with a tenant) as the v3 ``auth`` it means."""
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
    return {"identity": identity, "scope": {"project": tenant} if tenant else "unscoped"}


class Auth:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    async def issue(self, auth: dict[str, Any], v2: bool = False) -> Issued:
        """Authenticate the v3 ``auth`` and issue a token; with ``v2`` also load the v2.0 catalog."""
        payload = await self.svc.authenticator.authenticate(auth)
        token = self.svc.tokens.issue(payload)
        try:
            validated = self.svc.tokens.validate(token)
        except errors.NotFound:
            raise errors.Unauthorized("The request you have made requires authentication.") from None
        c = validated.ctx
        if not v2 or not c.project_id:
            return Issued(token, payload, validated, [])
        with self.svc.session() as s:
            allowed = endpoint_filter.allowed_endpoint_ids(s, c.project_id)
            return Issued(token, payload, validated,
                          catalog.render_v2(catalog.load(s), c.project_id, c.user_id, allowed))

    def subject(self, ctx: RequestContext, subject: str | None, method: str) -> Validated:
        """The subject token of a GET, HEAD or DELETE on ``/v3/auth/tokens``, if policy lets ``ctx`` see it."""
        if not subject:
            raise errors.BadRequest("X-Subject-Token header is required.")
        validated = self.svc.tokens.validate(subject)
        self.svc.enforce(ctx, SUBJECT_RULES.get(method, "identity:revoke_token"),
                         {"target.token.user_id": validated.payload.user_id})
        return validated

    async def revoke(self, ctx: RequestContext, subject: str | None) -> None:
        validated = self.subject(ctx, subject, "DELETE")
        await self.svc.write(lambda s: self.svc.tokens.revoke(s, audit_id=validated.payload.audit_ids[0]))

    def catalog(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """The caller's v3 catalog; only scoped tokens have one."""
        if ctx.project_id is None and ctx.domain_id is None and not ctx.is_system:
            raise errors.Forbidden("The catalog is only available to scoped tokens.")
        with self.svc.session() as s:
            allowed = endpoint_filter.allowed_endpoint_ids(s, ctx.project_id) if ctx.project_id else None
            return catalog.render_v3(catalog.load(s), ctx.project_id, ctx.user_id, allowed)

    def projects(self, ctx: RequestContext) -> list[Project]:
        """The enabled projects the caller holds a role on."""
        with self.svc.session() as s:
            ids = roles.projects_with_roles(s, ctx.user_id)
            return list(s.scalars(select(Project).where(Project.id.in_(ids), Project.enabled.is_(True)))) if ids else []

    def domains(self, ctx: RequestContext) -> list[Domain]:
        """The enabled domains the caller holds a role on."""
        with self.svc.session() as s:
            ids = roles.domains_with_roles(s, ctx.user_id)
            return list(s.scalars(select(Domain).where(Domain.id.in_(ids), Domain.enabled.is_(True)))) if ids else []

    def system(self, ctx: RequestContext) -> bool:
        """Whether the caller holds a role on the system."""
        with self.svc.session() as s:
            return roles.has_system_roles(s, ctx.user_id)
