"""Requests on unified limits (registered limits, project and domain limits, the enforcement model): the policy
check, the transaction and the rules of ``limits.py``, for a caller's context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.identity import limits
from tinystack.identity.models import Limit, RegisteredLimit

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService


def _target(lim: Limit | None, limit_id: str) -> dict[str, Any]:
    if lim is None:
        return {"target.limit.id": limit_id}
    return {"target.limit.id": lim.id, "target.limit.project_id": lim.project_id or None,
            "target.limit.domain_id": lim.domain_id or None}


class Limits:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    # --- registered limits -----------------------------------------------------------------------

    def list_registered(self, ctx: RequestContext, filters: Mapping[str, str | None]) -> list[RegisteredLimit]:
        self.svc.enforce(ctx, "identity:list_registered_limits", {})
        with self.svc.session() as s:
            return limits.list_registered(s, filters)

    def get_registered(self, ctx: RequestContext, limit_id: str) -> RegisteredLimit:
        self.svc.enforce(ctx, "identity:get_registered_limit", {})
        with self.svc.session() as s:
            return limits.get_registered(s, limit_id)

    async def create_registered(self, ctx: RequestContext, bodies: list[Mapping[str, Any]]) -> list[RegisteredLimit]:
        self.svc.enforce(ctx, "identity:create_registered_limit", {})
        return await self.svc.write(lambda s: limits.create_registered(s, bodies))

    async def update_registered(self, ctx: RequestContext, limit_id: str, body: Mapping[str, Any]) -> RegisteredLimit:
        self.svc.enforce(ctx, "identity:update_registered_limit", {})
        return await self.svc.write(lambda s: limits.update_registered(s, limit_id, body))

    async def delete_registered(self, ctx: RequestContext, limit_id: str) -> None:
        self.svc.enforce(ctx, "identity:delete_registered_limit", {})
        await self.svc.write(lambda s: limits.delete_registered(s, limit_id))

    # --- limits ----------------------------------------------------------------------------------

    def model(self, ctx: RequestContext) -> dict[str, str]:
        self.svc.enforce(ctx, "identity:get_limit_model", {})
        return dict(limits.MODEL)

    def list_limits(self, ctx: RequestContext, filters: Mapping[str, str | None]) -> list[Limit]:
        self.svc.enforce(ctx, "identity:list_limits", {})
        narrowed = dict(filters)
        if not self.svc.policy.check("admin_required", {}, ctx.creds()):
            # As Keystone: a project sees its own limits, a domain its own; an unscoped token none.
            if ctx.project_id is None and ctx.domain_id is None:
                return []
            narrowed.update({"project_id": ctx.project_id or "", "domain_id": ctx.domain_id or ""})
        with self.svc.session() as s:
            return limits.list_limits(s, narrowed)

    def get_limit(self, ctx: RequestContext, limit_id: str) -> Limit:
        with self.svc.session() as s:
            self.svc.enforce(ctx, "identity:get_limit", _target(s.get(Limit, limit_id), limit_id))
            return limits.get_limit(s, limit_id)

    async def create_limits(self, ctx: RequestContext, bodies: list[Mapping[str, Any]]) -> list[Limit]:
        self.svc.enforce(ctx, "identity:create_limit", {})
        return await self.svc.write(lambda s: limits.create_limits(s, bodies))

    async def update_limit(self, ctx: RequestContext, limit_id: str, body: Mapping[str, Any]) -> Limit:
        self.svc.enforce(ctx, "identity:update_limit", {"target.limit.id": limit_id})
        return await self.svc.write(lambda s: limits.update_limit(s, limit_id, body))

    async def delete_limit(self, ctx: RequestContext, limit_id: str) -> None:
        self.svc.enforce(ctx, "identity:delete_limit", {"target.limit.id": limit_id})

        def delete(s: Session) -> None:
            limits.delete_limit(s, limit_id)

        await self.svc.write(delete)
