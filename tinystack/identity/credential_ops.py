"""Requests on application credentials, credentials and their OS-EC2 view: the policy check, the delegation
limits, the transaction and the rules of ``credentials.py``, for a caller's context. Writes run off the
event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.jsonio import validate
from tinystack.identity import access_rules, credentials
from tinystack.identity import credential_schemas as schemas
from tinystack.identity.models import AccessRule, ApplicationCredential, Credential, Role
from tinystack.identity.passwords import hash_secret
from tinystack.identity.timeutil import parse

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService

APP_CREDS = "application credentials"
# An application credential with the roles it carries (what its view shows).
AppCred = tuple[ApplicationCredential, list[Role], list[AccessRule]]


def _owner(user_id: str) -> dict[str, str]:
    return {"target.credential.user_id": user_id}


class Credentials:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    # --- application credentials -----------------------------------------------------------------

    async def create_app_cred(self, ctx: RequestContext, user_id: str, raw: Any) -> tuple[AppCred, str]:
        """Create one from the request body ``raw`` (checked here, after policy, as Keystone orders it); the
        credential and its secret, which is never shown again."""
        self.svc.enforce(ctx, "identity:create_application_credential", {"user_id": user_id})
        validate(raw, schemas.APP_CRED_CREATE)
        body = raw["application_credential"]
        if ctx.user_id != user_id:
            raise errors.Forbidden("Cannot create an application credential for another user.")
        if ctx.project_id is None:
            raise errors.Forbidden("Application credentials can only be created with a project-scoped token.")
        project_id = ctx.project_id
        expires_at = credentials.parse_expiry(parse(body.get("expires_at") or None))
        with self.svc.session() as s:
            credentials.forbid_restricted(s, ctx, APP_CREDS)
            role_ids = credentials.resolve_roles(s, body.get("roles"), ctx.role_ids)
            credentials.ensure_app_cred_name_free(s, user_id, body["name"])
        secret = body.get("secret") or credentials.generate_secret()
        secret_hash = await asyncio.to_thread(hash_secret, secret, self.svc.hash_rounds)

        def create(s: Session) -> AppCred:
            cred = credentials.create_app_cred(
                s, user_id=user_id, project_id=project_id, name=body["name"], secret_hash=secret_hash,
                description=body.get("description") or "", expires_at=expires_at,
                unrestricted=bool(body.get("unrestricted")), role_ids=role_ids)
            cred.access_rule_ids = access_rules.resolve(s, user_id, body.get("access_rules") or [])
            return cred, credentials.app_cred_roles(s, cred), access_rules.rules_of(s, cred)

        return await self.svc.write(create), secret

    def list_app_creds(self, ctx: RequestContext, user_id: str, name: str | None) -> list[AppCred]:
        self.svc.enforce(ctx, "identity:list_application_credentials", {"user_id": user_id})
        with self.svc.session() as s:
            return [(cred, credentials.app_cred_roles(s, cred), access_rules.rules_of(s, cred))
                    for cred in credentials.list_app_creds(s, user_id, name)]

    def _load_app_cred(self, s: Session, ctx: RequestContext, rule: str, user_id: str,
                       cred_id: str) -> ApplicationCredential:
        cred = credentials.find_app_cred(s, cred_id)
        # Ownership comes from the credential itself, never from the user id the caller put in the path.
        self.svc.enforce(ctx, rule, {"user_id": cred.user_id if cred else user_id})
        if cred is None or cred.user_id != user_id:
            raise errors.NotFound(f"Could not find Application Credential: {cred_id}.")
        return cred

    def get_app_cred(self, ctx: RequestContext, user_id: str, cred_id: str) -> AppCred:
        with self.svc.session() as s:
            cred = self._load_app_cred(s, ctx, "identity:get_application_credential", user_id, cred_id)
            return cred, credentials.app_cred_roles(s, cred), access_rules.rules_of(s, cred)

    async def delete_app_cred(self, ctx: RequestContext, user_id: str, cred_id: str) -> None:
        def delete(s: Session) -> None:
            cred = self._load_app_cred(s, ctx, "identity:delete_application_credential", user_id, cred_id)
            credentials.forbid_restricted(s, ctx, APP_CREDS)
            s.delete(cred)

        await self.svc.write(delete)

    # --- access rules ----------------------------------------------------------------------------

    def list_access_rules(self, ctx: RequestContext, user_id: str,
                          filters: dict[str, str | None]) -> list[AccessRule]:
        self.svc.enforce(ctx, "identity:list_access_rules", {"user_id": user_id})
        with self.svc.session() as s:
            return access_rules.list_rules(s, user_id, filters)

    def get_access_rule(self, ctx: RequestContext, user_id: str, rule_id: str) -> AccessRule:
        self.svc.enforce(ctx, "identity:get_access_rule", {"user_id": user_id})
        with self.svc.session() as s:
            return access_rules.get_rule(s, user_id, rule_id)

    async def delete_access_rule(self, ctx: RequestContext, user_id: str, rule_id: str) -> None:
        self.svc.enforce(ctx, "identity:delete_access_rule", {"user_id": user_id})

        def delete(s: Session) -> None:
            credentials.forbid_restricted(s, ctx, APP_CREDS)
            access_rules.delete_rule(s, user_id, rule_id)

        await self.svc.write(delete)

    # --- credentials -----------------------------------------------------------------------------

    def list_credentials(self, ctx: RequestContext, user_id: str | None, kind: str | None) -> list[Credential]:
        self.svc.enforce(ctx, "identity:list_credentials", _owner(ctx.user_id))
        with self.svc.session() as s:
            found = credentials.list_credentials(s, user_id, kind)
        # Non-admins see their own credentials only, and a delegated token only its project's.
        return [cred for cred in found if self.svc.allowed(ctx, "identity:get_credential", _owner(cred.user_id))
                and credentials.visible_to_delegation(ctx, cred)]

    async def create_credential(self, ctx: RequestContext, body: dict[str, Any]) -> Credential:
        self.svc.enforce(ctx, "identity:create_credential", _owner(body["user_id"]))

        def create(s: Session) -> Credential:
            if body["type"].lower() == credentials.EC2:
                credentials.forbid_restricted(s, ctx, "credentials")
            credentials.check_delegated_project(ctx, body.get("project_id"))
            return credentials.create_credential(s, body, ctx.application_credential_id)

        return await self.svc.write(create)

    def _load_credential(self, s: Session, ctx: RequestContext, rule: str, cred_id: str) -> Credential:
        cred = credentials.find_credential(s, cred_id)
        self.svc.enforce(ctx, rule, _owner(cred.user_id) if cred else {})
        if cred is None:
            raise errors.NotFound(f"Could not find credential: {cred_id}.")
        credentials.check_delegated_project(ctx, cred.project_id)
        return cred

    def get_credential(self, ctx: RequestContext, cred_id: str) -> Credential:
        with self.svc.session() as s:
            return self._load_credential(s, ctx, "identity:get_credential", cred_id)

    async def update_credential(self, ctx: RequestContext, cred_id: str, changes: dict[str, Any]) -> Credential:
        def update(s: Session) -> Credential:
            cred = self._load_credential(s, ctx, "identity:update_credential", cred_id)
            # The result must still be the caller's: no handing a credential to someone else.
            self.svc.enforce(ctx, "identity:update_credential", _owner(changes.get("user_id", cred.user_id)))
            credentials.check_delegated_project(ctx, changes.get("project_id", cred.project_id))
            return credentials.update_credential(s, cred, changes)

        return await self.svc.write(update)

    async def delete_credential(self, ctx: RequestContext, cred_id: str) -> None:
        await self.svc.write(lambda s: s.delete(self._load_credential(s, ctx, "identity:delete_credential", cred_id)))

    # --- OS-EC2 ----------------------------------------------------------------------------------

    async def create_ec2(self, ctx: RequestContext, user_id: str, raw: Any) -> Credential:
        """Create one from the request body ``raw`` (checked here, after policy, as Keystone orders it)."""
        self.svc.enforce(ctx, "identity:ec2_create_credential", _owner(user_id))
        validate(raw, schemas.EC2_CREATE)
        project_id = raw["tenant_id"]

        def create(s: Session) -> Credential:
            credentials.forbid_restricted(s, ctx, "credentials")
            credentials.check_delegated_project(ctx, project_id)
            return credentials.create_ec2(s, user_id, project_id, ctx.application_credential_id)

        return await self.svc.write(create)

    def list_ec2(self, ctx: RequestContext, user_id: str) -> list[Credential]:
        self.svc.enforce(ctx, "identity:ec2_list_credentials", {"user_id": user_id})
        with self.svc.session() as s:
            return [cred for cred in credentials.list_ec2(s, user_id) if credentials.visible_to_delegation(ctx, cred)]

    def _load_ec2(self, s: Session, ctx: RequestContext, rule: str, user_id: str, access: str) -> Credential:
        self.svc.enforce(ctx, rule, _owner(user_id))
        cred = credentials.find_ec2(s, user_id, access)
        credentials.check_delegated_project(ctx, cred.project_id)
        return cred

    def get_ec2(self, ctx: RequestContext, user_id: str, access: str) -> Credential:
        with self.svc.session() as s:
            return self._load_ec2(s, ctx, "identity:ec2_get_credential", user_id, access)

    async def delete_ec2(self, ctx: RequestContext, user_id: str, access: str) -> None:
        await self.svc.write(lambda s: s.delete(self._load_ec2(s, ctx, "identity:ec2_delete_credential", user_id, access)))
