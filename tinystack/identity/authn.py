"""``POST /v3/auth/tokens``: who the caller is (password, token, application credential) and which scope."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.db import Database
from tinystack.identity import roles, trusts
from tinystack.identity.fernet import TokenPayload, new_audit_id
from tinystack.identity.models import ApplicationCredential, Domain, Project, User
from tinystack.identity.passwords import check_secret
from tinystack.identity.tokens import TokenService

UNAUTHORIZED = "The request you have made requires authentication."


@dataclass(frozen=True)
class Lockout:
    attempts: int  # 0: off
    duration: float


@dataclass
class Identified:
    user_id: str
    methods: list[str]
    expires_at: float | None = None
    audit_chain: str | None = None
    app_cred: ApplicationCredential | None = None


class Authenticator:
    def __init__(self, db: Database, tokens: TokenService, lifetime: int, lockout: Lockout) -> None:
        self.db = db
        self.tokens = tokens
        self.lifetime = lifetime
        self.lockout = lockout

    async def authenticate(self, auth: dict[str, Any]) -> TokenPayload:
        identity = auth["identity"]
        methods = identity["methods"]
        if not methods:
            raise errors.BadRequest("identity.methods must name at least one method.")
        method = methods[0]
        if method not in identity:
            raise errors.BadRequest(f"Expecting to find {method} in identity.")
        if method == "password":
            who = await self._password(identity["password"])
        elif method == "token":
            who = self._token(identity["token"])
        elif method == "application_credential":
            who = await self._app_cred(identity["application_credential"])
        else:
            raise errors.Unauthorized(f"Attempted to authenticate with an unsupported method: {method}.")
        return self._scope(who, auth.get("scope"))

    # --- methods -----------------------------------------------------------------------------

    def _find_user(self, s: Session, spec: dict[str, Any]) -> User | None:
        if "id" in spec:
            return s.get(User, spec["id"])
        if "name" not in spec or "domain" not in spec:
            raise errors.BadRequest("A user needs an id, or a name and a domain.")
        domain = self._find_domain(s, spec["domain"])
        if domain is None:
            return None
        return s.scalar(select(User).where(User.name == spec["name"], User.domain_id == domain.id))

    def _find_domain(self, s: Session, spec: dict[str, Any]) -> Domain | None:
        if "id" in spec:
            return s.get(Domain, spec["id"])
        if "name" in spec:
            return s.scalar(select(Domain).where(Domain.name == spec["name"]))
        raise errors.BadRequest("A domain needs an id or a name.")

    async def _password(self, spec: dict[str, Any]) -> Identified:
        user_spec = spec["user"]
        password = user_spec.get("password")
        if not isinstance(password, str):
            raise errors.BadRequest("Expecting to find password in user.")
        with self.db.session() as s:
            user = self._find_user(s, user_spec)
            if user is None:
                raise errors.Unauthorized(UNAUTHORIZED)
            domain = s.get(Domain, user.domain_id)
            locked = self._locked(user)
            user_id, hashed, enabled = user.id, user.password_hash, user.enabled and bool(domain and domain.enabled)
            expires_at = None if user.options.get("ignore_password_expiry") else user.password_expires_at
            counted = bool(self.lockout.attempts) and not user.options.get("ignore_lockout_failure_attempts")
        if locked:
            raise errors.Unauthorized(f"The account is locked for user: {user_id}.")
        ok = await asyncio.to_thread(check_secret, password, hashed)
        with self.db.session() as s:
            # The failure count must be committed, so nothing in this block raises.
            fresh = s.get(User, user_id)
            if fresh is not None and not ok and counted:
                fresh.failed_auth_count += 1
                fresh.failed_auth_at = time.time()
            elif fresh is not None and ok and fresh.failed_auth_count:
                fresh.failed_auth_count = 0
                fresh.failed_auth_at = None
        if fresh is None or not ok:
            raise errors.Unauthorized(UNAUTHORIZED)
        if not enabled:
            raise errors.Unauthorized(UNAUTHORIZED)
        if expires_at is not None and expires_at <= time.time():
            raise errors.Unauthorized(f"The password is expired and needs to be changed for user: {user_id}.")
        return Identified(user_id, ["password"])

    def _locked(self, user: User) -> bool:
        if not self.lockout.attempts or user.failed_auth_count < self.lockout.attempts:
            return False
        return user.failed_auth_at is not None and time.time() - user.failed_auth_at < self.lockout.duration

    def _token(self, spec: dict[str, Any]) -> Identified:
        token = spec.get("id")
        if not isinstance(token, str):
            raise errors.BadRequest("Expecting to find id in token.")
        # A revoked or expired token is a 404 here, as Keystone answers (Tempest relies on it).
        validated = self.tokens.validate(token)
        p = validated.payload
        if p.app_cred_id is not None:
            raise errors.Forbidden("A token created with an application credential cannot be rescoped.")
        if p.trust_id is not None:
            raise errors.Forbidden("Trust-scoped tokens cannot be rescoped.")
        methods = list(dict.fromkeys([*p.methods, "token"]))
        return Identified(p.user_id, methods, expires_at=p.expires_at, audit_chain=p.audit_ids[-1])

    async def _app_cred(self, spec: dict[str, Any]) -> Identified:
        secret = spec.get("secret")
        if not isinstance(secret, str):
            raise errors.BadRequest("Expecting to find secret in application_credential.")
        with self.db.session() as s:
            if "id" in spec:
                cred = s.get(ApplicationCredential, spec["id"])
            elif "name" in spec and "user" in spec:
                user = self._find_user(s, spec["user"])
                cred = None if user is None else s.scalar(select(ApplicationCredential).where(
                    ApplicationCredential.user_id == user.id, ApplicationCredential.name == spec["name"]))
            else:
                raise errors.BadRequest("An application credential needs an id, or a name and a user.")
            if cred is None or (cred.expires_at is not None and cred.expires_at <= time.time()):
                raise errors.Unauthorized(UNAUTHORIZED)
            s.expunge(cred)
        if not await asyncio.to_thread(check_secret, secret, cred.secret_hash):
            raise errors.Unauthorized(UNAUTHORIZED)
        return Identified(cred.user_id, ["application_credential"], expires_at=cred.expires_at, app_cred=cred)

    # --- scope -------------------------------------------------------------------------------

    def _scope(self, who: Identified, scope: Any) -> TokenPayload:
        scope_type, scope_id = "unscoped", None
        user_id, trust_id, expires_at = who.user_id, None, who.expires_at
        with self.db.session() as s:
            user = s.get(User, who.user_id)
            if user is None:
                raise errors.Unauthorized(UNAUTHORIZED)
            if who.app_cred is not None:
                if scope and not self._same_project(s, scope, who.app_cred.project_id):
                    raise errors.Unauthorized("Application credentials cannot request a scope.")
                scope_type, scope_id = "project", who.app_cred.project_id
            elif scope == "unscoped":
                pass
            elif isinstance(scope, dict) and "OS-TRUST:trust" in scope:
                trust = trusts.consume(s, self._trust_id(scope["OS-TRUST:trust"]), who.user_id)
                scope_type, scope_id, trust_id = "project", trust.project_id, trust.id
                if trust.impersonation:
                    user_id = trust.trustor_user_id
                if trust.expires_at is not None:
                    expires_at = trust.expires_at if expires_at is None else min(expires_at, trust.expires_at)
            elif isinstance(scope, dict) and "project" in scope:
                project = self._find_project(s, scope["project"])
                scope_type, scope_id = "project", project.id
                if not project.enabled:
                    raise errors.Unauthorized(f"Project {project.id} is disabled.")
            elif isinstance(scope, dict) and "domain" in scope:
                domain = self._find_domain(s, scope["domain"])
                if domain is None:
                    raise errors.Unauthorized(UNAUTHORIZED)
                if not domain.enabled:
                    raise errors.Unauthorized(f"Domain {domain.id} is disabled.")
                scope_type, scope_id = "domain", domain.id
            elif isinstance(scope, dict) and "system" in scope:
                if scope["system"] != {"all": True}:
                    raise errors.BadRequest("The only system scope is {\"all\": true}.")
                scope_type = "system"
            elif scope is not None:
                raise errors.BadRequest("Unknown scope: expected project, domain, system or unscoped.")
            elif user.default_project_id:
                # No scope asked for: Keystone scopes to the default project when the user still has access.
                default = s.get(Project, user.default_project_id)
                if default is not None and default.enabled and roles.effective_roles(s, user.id, "project", default.id):
                    scope_type, scope_id = "project", default.id
            if trust_id is None and scope_type != "unscoped" and not roles.effective_roles(s, user.id, scope_type,
                                                                                           scope_id):
                raise errors.Unauthorized(f"User {user.id} has no access to {scope_type} {scope_id or 'all'}.")
        now = time.time()
        expires = now + self.lifetime
        if expires_at is not None:
            expires = min(expires, expires_at)
        audit_ids = (new_audit_id(),) if who.audit_chain is None else (new_audit_id(), who.audit_chain)
        return TokenPayload(user_id, tuple(who.methods), scope_type, scope_id, now, expires, audit_ids,
                            who.app_cred.id if who.app_cred else None, trust_id)

    @staticmethod
    def _trust_id(spec: Any) -> str:
        if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
            raise errors.BadRequest("Expecting to find id in OS-TRUST:trust.")
        return str(spec["id"])

    def _find_project(self, s: Session, spec: dict[str, Any]) -> Project:
        if "id" in spec:
            project = s.get(Project, spec["id"])
        elif "name" in spec and "domain" in spec:
            domain = self._find_domain(s, spec["domain"])
            project = None if domain is None else s.scalar(
                select(Project).where(Project.name == spec["name"], Project.domain_id == domain.id))
        else:
            raise errors.BadRequest("A project needs an id, or a name and a domain.")
        if project is None:
            raise errors.Unauthorized(UNAUTHORIZED)
        return project

    def _same_project(self, s: Session, scope: Any, project_id: str) -> bool:
        if not isinstance(scope, dict) or "project" not in scope:
            return False
        try:
            return self._find_project(s, scope["project"]).id == project_id
        except errors.TinyError:
            return False
