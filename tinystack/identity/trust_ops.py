"""Requests on OS-TRUST trusts: the policy check, the transaction and the rules of ``trusts.py``, for a
caller's context. Writes run off the event loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.identity import trusts
from tinystack.identity.credentials import forbid_restricted
from tinystack.identity.models import Role, Trust

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService

# Keystone's [trust] max_redelegation_count default.
MAX_REDELEGATION = 3


@dataclass(frozen=True)
class TrustView:
    """A trust with the roles it delegates, read in one transaction."""

    trust: Trust
    roles: list[Role]


def _target(t: Trust | None) -> dict[str, Any]:
    if t is None:
        return {}
    return {"target.trust.trustor_user_id": t.trustor_user_id, "target.trust.trustee_user_id": t.trustee_user_id}


def token_trust_id(ctx: RequestContext) -> str | None:
    """The trust a trust-scoped token acts through (``tokens.py`` records it in the context's ``extra``)."""
    return ctx.extra.get("trust_id")


class Trusts:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def _find(self, s: Session, ctx: RequestContext, rule: str, trust_id: str) -> Trust:
        # Policy first: an outsider learns nothing, not even whether the trust exists.
        found = s.get(Trust, trust_id)
        self.svc.enforce(ctx, rule, _target(found) or {"target.trust.id": trust_id})
        return trusts.get_trust(s, trust_id)

    async def create(self, ctx: RequestContext, body: Mapping[str, Any]) -> TrustView:
        self.svc.enforce(ctx, "identity:create_trust", {"trust.trustor_user_id": body["trustor_user_id"]})

        def create(s: Session) -> TrustView:
            forbid_restricted(s, ctx, "trusts")
            parent_id = token_trust_id(ctx)
            parent = s.get(Trust, parent_id) if parent_id is not None else None
            if parent_id is not None and not trusts.live(parent):
                raise trusts.not_found(parent_id)
            trust = trusts.create_trust(s, body, parent, MAX_REDELEGATION)
            return TrustView(trust, trusts.role_objects(s, trust))

        return await self.svc.write(create)

    def list_trusts(self, ctx: RequestContext, *, trustor: str | None, trustee: str | None) -> list[TrustView]:
        if trustor is not None:
            self.svc.enforce(ctx, "identity:list_trusts_for_trustor", {"target.trust.trustor_user_id": trustor})
        if trustee is not None:
            self.svc.enforce(ctx, "identity:list_trusts_for_trustee", {"target.trust.trustee_user_id": trustee})
        if trustor is None and trustee is None:
            self.svc.enforce(ctx, "identity:list_trusts", {})
        with self.svc.session() as s:
            return [TrustView(t, trusts.role_objects(s, t))
                    for t in trusts.list_trusts(s, trustor=trustor, trustee=trustee)]

    def get(self, ctx: RequestContext, trust_id: str) -> TrustView:
        with self.svc.session() as s:
            trust = self._find(s, ctx, "identity:get_trust", trust_id)
            return TrustView(trust, trusts.role_objects(s, trust))

    async def delete(self, ctx: RequestContext, trust_id: str) -> None:
        def delete(s: Session) -> None:
            trusts.delete_trust(s, self._find(s, ctx, "identity:delete_trust", trust_id))

        await self.svc.write(delete)

    def roles(self, ctx: RequestContext, trust_id: str) -> list[Role]:
        with self.svc.session() as s:
            return trusts.role_objects(s, self._find(s, ctx, "identity:list_roles_for_trust", trust_id))

    def role(self, ctx: RequestContext, trust_id: str, role_id: str) -> Role:
        with self.svc.session() as s:
            trust = self._find(s, ctx, "identity:get_role_for_trust", trust_id)
            for role in trusts.role_objects(s, trust):
                if role.id == role_id:
                    return role
        raise errors.NotFound(f"Could not find role: {role_id}.")
