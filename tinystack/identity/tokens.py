"""Token validation, rendering, revocation and the validation cache.

Validating a token is on every request of every service, so a validated token is cached with the
identity ``generation`` it was built at; any identity change bumps the generation and empties the cache.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.web import dumps
from tinystack.identity import access_rules, catalog, endpoint_filter, roles, trusts
from tinystack.identity.fernet import TokenFormatter, TokenPayload
from tinystack.identity.models import ApplicationCredential, Domain, Project, RevocationEvent, Role, Trust, User
from tinystack.identity.timeutil import iso, naive_iso


@dataclass
class Validated:
    """A token that passed validation, with its rendered bodies built lazily."""

    payload: TokenPayload
    ctx: RequestContext
    body: dict[str, Any]
    generation: int
    rendered: dict[bool, str] = field(default_factory=dict)

    def render(self, with_catalog: bool) -> str:
        text = self.rendered.get(with_catalog)
        if text is None:
            body = self.body if with_catalog else {k: v for k, v in self.body.items() if k != "catalog"}
            text = self.rendered[with_catalog] = dumps({"token": body})
        return text


@dataclass(frozen=True)
class Subject:
    """The part of a validation shared by every token of one user, scope and credential."""

    ctx: RequestContext
    body: dict[str, Any]
    project_domain_id: str | None
    # The application credential's or trust's own expiry: its tokens die with it.
    delegation_expires_at: float | None


@dataclass(frozen=True)
class Revocation:
    issued_before: float
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    audit_id: str | None = None

    def matches(self, p: TokenPayload, project_domain_id: str | None, user_domain_id: str | None = None) -> bool:
        if p.issued_at >= self.issued_before:
            return False
        if self.user_id is not None and self.user_id != p.user_id:
            return False
        if self.project_id is not None and not (p.scope_type == "project" and p.scope_id == self.project_id):
            return False
        if self.domain_id is not None and self.domain_id not in (project_domain_id, p.scope_id, user_domain_id):
            return False
        return self.audit_id is None or self.audit_id in p.audit_ids


class TokenService:
    def __init__(self, db: Database, formatter: TokenFormatter, lifetime: int, cache_size: int = 10000) -> None:
        self.db = db
        self.formatter = formatter
        self.lifetime = lifetime
        self.cache_size = cache_size
        self.generation = 0
        self._cache: OrderedDict[str, Validated] = OrderedDict()
        self._subjects: dict[tuple[str, str, str | None, str | None, str | None], Subject] = {}
        self._catalog: list[Any] | None = None
        self._revocations: list[Revocation] = []
        self.load_revocations()

    # --- invalidation ------------------------------------------------------------------------

    def changed(self) -> None:
        """Something that feeds tokens changed: forget every cached validation."""
        self.generation += 1
        self._cache.clear()
        self._subjects.clear()
        self._catalog = None

    def load_revocations(self) -> None:
        now = time.time()
        with self.db.session() as s:
            s.execute(delete(RevocationEvent).where(RevocationEvent.expires_at < now))
            self._revocations = [Revocation(e.issued_before, e.user_id, e.project_id, e.domain_id, e.audit_id)
                                 for e in s.scalars(select(RevocationEvent))]
        self.changed()

    def revoke(self, s: Session, *, user_id: str | None = None, project_id: str | None = None,
               domain_id: str | None = None, audit_id: str | None = None) -> None:
        """Record a revocation inside the caller's transaction; it applies to tokens issued until now."""
        now = time.time()
        s.add(RevocationEvent(user_id=user_id, project_id=project_id, domain_id=domain_id, audit_id=audit_id,
                              issued_before=now, expires_at=now + self.lifetime + 60))
        self._revocations.append(Revocation(now, user_id, project_id, domain_id, audit_id))
        self._cache.clear()

    # --- issue and validate ------------------------------------------------------------------

    def issue(self, payload: TokenPayload) -> str:
        return self.formatter.encode(payload)

    def validate(self, token: str) -> Validated:
        """The validated token, or ``NotFound`` (expired, revoked, malformed, or its subject gone)."""
        hit = self._cache.get(token)
        now = time.time()
        if hit is not None and hit.generation == self.generation:
            if hit.payload.expires_at <= now:
                self._cache.pop(token, None)
                raise errors.NotFound("Could not find token.")
            return hit
        payload = self.formatter.decode(token)
        if payload.expires_at <= now:
            raise errors.NotFound("Could not find token.")
        with self.db.session() as s:
            validated = self._build(s, token, payload)
        self._cache[token] = validated
        if len(self._cache) > self.cache_size:
            # A revocation recorded by a write in a worker thread may have emptied the cache just now. A bare
            # try costs nothing when nothing is raised; contextlib.suppress would, on every miss with the cache off.
            try:  # noqa: SIM105
                self._cache.popitem(last=False)
            except KeyError:
                pass
        return validated

    def context(self, token: str) -> RequestContext:
        """The token validator the web layer calls for ``X-Auth-Token``: any failure is a 401."""
        try:
            return self.validate(token).ctx
        except errors.NotFound:
            raise errors.Unauthorized("The request you have made requires authentication.") from None

    def _build(self, s: Session, token: str, p: TokenPayload) -> Validated:
        key = (p.user_id, p.scope_type, p.scope_id, p.app_cred_id, p.trust_id)
        subject = self._subjects.get(key)
        if subject is None:
            subject = self._subjects[key] = self._subject(s, p)
        if subject.delegation_expires_at is not None and subject.delegation_expires_at <= time.time():
            raise errors.NotFound("Could not find token.")
        if any(r.matches(p, subject.project_domain_id, subject.ctx.user_domain_id) for r in self._revocations):
            raise errors.NotFound("Could not find token.")
        body = {"methods": list(p.methods), **subject.body, "audit_ids": list(p.audit_ids),
                "expires_at": iso(p.expires_at), "issued_at": iso(p.issued_at)}
        ctx = dataclasses.replace(subject.ctx, token=token, audit_ids=p.audit_ids, expires_at=p.expires_at,
                                  issued_at=p.issued_at, methods=p.methods)
        return Validated(p, ctx, body, self.generation)

    def _subject(self, s: Session, p: TokenPayload) -> Subject:
        """Everything a token's validation says that depends only on user, scope and credential."""
        user = s.get(User, p.user_id)
        if user is None or not user.enabled:
            raise errors.NotFound("Could not find token.")
        user_domain = s.get(Domain, user.domain_id)
        if user_domain is None or not user_domain.enabled:
            raise errors.NotFound("Could not find token.")
        project = domain = None
        if p.scope_type == "project" and p.scope_id is not None:
            project = s.get(Project, p.scope_id)
            if project is None or not project.enabled:
                raise errors.NotFound("Could not find token.")
            domain = s.get(Domain, project.domain_id)
            if domain is None or not domain.enabled:
                raise errors.NotFound("Could not find token.")
        elif p.scope_type == "domain" and p.scope_id is not None:
            domain = s.get(Domain, p.scope_id)
            if domain is None or not domain.enabled:
                raise errors.NotFound("Could not find token.")
        trust = None
        if p.trust_id is not None:
            trust = s.get(Trust, p.trust_id)
            role_list = self._trust_roles(s, trust, p)
        elif p.scope_type != "unscoped":
            role_list = roles.effective_roles(s, user.id, p.scope_type, p.scope_id)
        else:
            role_list = []
        app_cred = rules = None
        if p.app_cred_id is not None:
            app_cred = s.get(ApplicationCredential, p.app_cred_id)
            if app_cred is None:
                raise errors.NotFound("Could not find token.")
            rules = access_rules.for_context(s, app_cred)
            allowed = set(roles.expand_implied(s, app_cred.role_ids))
            role_list = [r for r in role_list if r.id in allowed]
        if p.scope_type != "unscoped" and not role_list:
            raise errors.NotFound("Could not find token.")

        body: dict[str, Any] = {
            "user": {"domain": {"id": user_domain.id, "name": user_domain.name}, "id": user.id, "name": user.name,
                     "password_expires_at": naive_iso(user.password_expires_at)},
        }
        if project is not None and domain is not None:
            body["project"] = {"domain": {"id": domain.id, "name": domain.name}, "id": project.id, "name": project.name}
            body["is_domain"] = False
        elif domain is not None:
            body["domain"] = {"id": domain.id, "name": domain.name}
        elif p.scope_type == "system":
            body["system"] = {"all": True}
        if p.scope_type != "unscoped":
            body["roles"] = [{"id": r.id, "name": r.name} for r in role_list]
            if self._catalog is None:
                entries = catalog.load(s)
                # Kept across sessions: detached now, so that a rollback of this one (a token found revoked
                # later in it) cannot expire the rows and fail every later render of the catalog.
                for svc, eps in entries:
                    for row in (svc, *eps):
                        s.expunge(row)
                self._catalog = entries
            shown = endpoint_filter.allowed_endpoint_ids(s, project.id) if project else None
            body["catalog"] = catalog.render_v3(self._catalog, p.scope_id if project else None, user.id, shown)
        if trust is not None:
            body["OS-TRUST:trust"] = {"id": trust.id, "impersonation": trust.impersonation,
                                      "trustor_user": {"id": trust.trustor_user_id},
                                      "trustee_user": {"id": trust.trustee_user_id}}
        if app_cred is not None:
            body["application_credential"] = {"id": app_cred.id, "name": app_cred.name,
                                              "restricted": not app_cred.unrestricted}
            if rules is not None:
                body["application_credential"]["access_rules"] = [
                    {"service": r.service, "method": r.method, "path": r.path} for r in rules]
        ctx = RequestContext(
            user_id=user.id, user_name=user.name, user_domain_id=user_domain.id, user_domain_name=user_domain.name,
            project_id=project.id if project else None, project_name=project.name if project else None,
            project_domain_id=domain.id if project and domain else None,
            project_domain_name=domain.name if project and domain else None,
            domain_id=domain.id if domain and not project else None,
            domain_name=domain.name if domain and not project else None,
            system_scope="all" if p.scope_type == "system" else None,
            roles=tuple(r.name for r in role_list), role_ids=tuple(r.id for r in role_list),
            application_credential_id=p.app_cred_id, access_rules=rules,
            extra={"trust_id": trust.id, "trustor_user_id": trust.trustor_user_id,
                   "trustee_user_id": trust.trustee_user_id, "impersonation": trust.impersonation} if trust else {},
        )
        delegation = app_cred.expires_at if app_cred else trust.expires_at if trust else None
        return Subject(ctx, body, project.domain_id if project else None, delegation)

    @staticmethod
    def _trust_roles(s: Session, trust: Trust | None, p: TokenPayload) -> list[Role]:
        """The roles of a trust-scoped token: what the trust still delegates, while trustor and trustee may
        still use it; the token's user is the trustor when the trust impersonates, else the trustee."""
        if not trusts.live(trust) or trust is None or trust.project_id != p.scope_id:
            raise errors.NotFound("Could not find token.")
        if p.user_id != (trust.trustor_user_id if trust.impersonation else trust.trustee_user_id):
            raise errors.NotFound("Could not find token.")
        other = s.get(User, trust.trustee_user_id if trust.impersonation else trust.trustor_user_id)
        if other is None or not other.enabled:
            raise errors.NotFound("Could not find token.")
        ids = trusts.usable_role_ids(s, trust)
        found = {r.id: r for r in s.scalars(select(Role).where(Role.id.in_(ids)))} if ids else {}
        return [found[i] for i in ids if i in found and not found[i].domain_id]
