"""Requests on users (with their projects and groups) and groups (with members): the policy check, the
transaction and the rules of ``users.py``, for a caller's context. Writes run off the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.identity import password_rules, resources, users
from tinystack.identity.models import Group, Project, User
from tinystack.identity.passwords import check_secret, hash_secret
from tinystack.identity.resource_common import policy_target

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService


class Users:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    async def _hash(self, password: str | None) -> str | None:
        return None if password is None else await asyncio.to_thread(hash_secret, password, self.svc.hash_rounds)

    def _enforce_user(self, s: Session, ctx: RequestContext, rule: str, user_id: str) -> None:
        self.svc.enforce(ctx, rule, policy_target("user", user_id, s.get(User, user_id)))

    def _enforce_group(self, s: Session, ctx: RequestContext, rule: str, group_id: str,
                       extra: Mapping[str, Any] | None = None) -> None:
        self.svc.enforce(ctx, rule, {**policy_target("group", group_id, s.get(Group, group_id)), **(extra or {})})

    # --- users -----------------------------------------------------------------------------------

    async def create_user(self, ctx: RequestContext, body: Mapping[str, Any]) -> User:
        domain_id = body.get("domain_id") or ctx.domain_id or resources.DEFAULT_DOMAIN
        self.svc.enforce(ctx, "identity:create_user", {"target.user.domain_id": domain_id})
        rules = self.svc.password_rules
        if body.get("password") is not None:
            rules.check_format(body["password"])
        hashed = await self._hash(body.get("password"))
        expires = rules.expires_at(body.get("options") or {}, time.time(), self_service=False)
        return await self.svc.write(lambda s: users.create_user(s, body, domain_id, hashed, expires))

    def list_users(self, ctx: RequestContext, *, name: str | None, domain_id: str | None, enabled: bool | None,
                   federated: bool) -> list[User]:
        """``federated``: the query named an identity provider; there are no federated users, so none match."""
        self.svc.enforce(ctx, "identity:list_users", {"domain_id": ctx.domain_id} if ctx.domain_id else {})
        if federated:
            return []
        with self.svc.session() as s:
            return users.list_users(s, name=name, domain_id=ctx.domain_id or domain_id, enabled=enabled)

    def get_user(self, ctx: RequestContext, user_id: str) -> User:
        with self.svc.session() as s:
            self._enforce_user(s, ctx, "identity:get_user", user_id)
            return users.get_user(s, user_id)

    async def update_user(self, ctx: RequestContext, user_id: str, body: Mapping[str, Any]) -> User:
        rules = self.svc.password_rules
        with self.svc.session() as s:
            self._enforce_user(s, ctx, "identity:update_user", user_id)
            user = s.get(User, user_id)
            options = {**(user.options if user else {}), **(body.get("options") or {})}
            history = password_rules.recent_hashes(s, user_id, user.password_hash if user else None,
                                                   rules.unique_last)
        password = body.get("password")
        if password is not None:
            rules.check_format(password)
            if await asyncio.to_thread(rules.reused, password, history):
                raise rules.history_error()
        hashed = await self._hash(password)
        expires = rules.expires_at(options, time.time(), self_service=False)
        return await self.svc.write(lambda s: users.update_user(s, self.svc.tokens, user_id, body, hashed, expires))

    async def delete_user(self, ctx: RequestContext, user_id: str) -> None:
        def delete(s: Session) -> None:
            self._enforce_user(s, ctx, "identity:delete_user", user_id)
            users.delete_user(s, self.svc.tokens, user_id)

        await self.svc.write(delete)

    async def change_password(self, ctx: RequestContext | None, user_id: str, original: str, new: str) -> None:
        """``ctx``: the caller's token, when it sent one (policy applies then); the original password is the
        check either way."""
        if ctx is not None:
            self.svc.enforce(ctx, "identity:change_password", {"user_id": user_id, "target.user.id": user_id})
        rules = self.svc.password_rules
        with self.svc.session() as s:
            user = s.get(User, user_id)
            checked = user.password_hash if user is not None else None
            enabled = user is not None and user.enabled
            options = dict(user.options) if user is not None else {}
            last = password_rules.last_entry(s, user_id)
            history = password_rules.recent_hashes(s, user_id, checked, rules.unique_last)
        if not enabled or not await asyncio.to_thread(check_secret, original, checked):
            raise errors.Unauthorized("Error when changing user password: Invalid user / password")
        now = time.time()
        if not options.get("lock_password"):
            # (a locked password is refused by users.change_password, with its own message)
            rules.check_age(last, now)
            rules.check_format(new)
            if await asyncio.to_thread(rules.reused, new, history):
                raise rules.history_error()
        hashed = await asyncio.to_thread(hash_secret, new, self.svc.hash_rounds)
        expires = rules.expires_at(options, now, self_service=True)
        await self.svc.write(lambda s: users.change_password(s, self.svc.tokens, user_id, checked, hashed, expires))

    def user_projects(self, ctx: RequestContext, user_id: str, *, name: str | None, domain_id: str | None,
                      enabled: bool | None) -> list[Project]:
        self.svc.enforce(ctx, "identity:list_user_projects", {"user_id": user_id, "target.user.id": user_id})
        with self.svc.session() as s:
            return resources.user_projects(s, user_id, name=name, domain_id=domain_id, enabled=enabled)

    def user_groups(self, ctx: RequestContext, user_id: str, *, name: str | None) -> list[Group]:
        self.svc.enforce(ctx, "identity:list_groups_for_user", {"user_id": user_id, "target.user.id": user_id})
        with self.svc.session() as s:
            users.get_user(s, user_id)
            return users.list_groups(s, name=name, domain_id=ctx.domain_id, user_id=user_id)

    # --- groups ----------------------------------------------------------------------------------

    async def create_group(self, ctx: RequestContext, body: Mapping[str, Any]) -> Group:
        domain_id = body.get("domain_id") or ctx.domain_id or resources.DEFAULT_DOMAIN
        self.svc.enforce(ctx, "identity:create_group", {"target.group.domain_id": domain_id})
        return await self.svc.write(lambda s: users.create_group(s, body, domain_id))

    def list_groups(self, ctx: RequestContext, *, name: str | None, domain_id: str | None) -> list[Group]:
        self.svc.enforce(ctx, "identity:list_groups",
                         {"target.group.domain_id": ctx.domain_id} if ctx.domain_id else {})
        with self.svc.session() as s:
            return users.list_groups(s, name=name, domain_id=ctx.domain_id or domain_id)

    def get_group(self, ctx: RequestContext, group_id: str) -> Group:
        with self.svc.session() as s:
            self._enforce_group(s, ctx, "identity:get_group", group_id)
            return users.get_group(s, group_id)

    async def update_group(self, ctx: RequestContext, group_id: str, body: Mapping[str, Any]) -> Group:
        def update(s: Session) -> Group:
            self._enforce_group(s, ctx, "identity:update_group", group_id)
            return users.update_group(s, group_id, body)

        return await self.svc.write(update)

    async def delete_group(self, ctx: RequestContext, group_id: str) -> None:
        def delete(s: Session) -> None:
            self._enforce_group(s, ctx, "identity:delete_group", group_id)
            users.delete_group(s, self.svc.tokens, group_id)

        await self.svc.write(delete)

    def group_users(self, ctx: RequestContext, group_id: str, *, name: str | None, domain_id: str | None,
                    enabled: bool | None) -> list[User]:
        with self.svc.session() as s:
            self._enforce_group(s, ctx, "identity:list_users_in_group", group_id)
            users.get_group(s, group_id)
            return users.list_users(s, group_id=group_id, name=name, enabled=enabled,
                                    domain_id=ctx.domain_id or domain_id)

    def check_member(self, ctx: RequestContext, group_id: str, user_id: str) -> None:
        with self.svc.session() as s:
            self._enforce_group(s, ctx, "identity:check_user_in_group", group_id, {"target.user.id": user_id})
            users.check_member(s, group_id, user_id)

    async def add_member(self, ctx: RequestContext, group_id: str, user_id: str) -> None:
        def add(s: Session) -> None:
            self._enforce_group(s, ctx, "identity:add_user_to_group", group_id, {"target.user.id": user_id})
            users.add_member(s, group_id, user_id)

        await self.svc.write(add)

    async def remove_member(self, ctx: RequestContext, group_id: str, user_id: str) -> None:
        def remove(s: Session) -> None:
            self._enforce_group(s, ctx, "identity:remove_user_from_group", group_id, {"target.user.id": user_id})
            users.remove_member(s, self.svc.tokens, group_id, user_id)

        await self.svc.write(remove)
