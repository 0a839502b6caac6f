"""``/v3/users`` (with a user's projects and groups) and ``/v3/groups`` (with members) as Keystone serves them."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import resource_schemas as rs
from tinystack.identity import resources, users, views
from tinystack.identity.api.common import base_url, flag, listing, same_id, target, with_head
from tinystack.identity.models import Group, User
from tinystack.identity.passwords import check_secret, hash_secret
from tinystack.identity.service import IdentityService


class UsersAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        out = [
            Route("POST", "/v3/users", self.create_user),
            Route("GET", "/v3/users", self.list_users),
            Route("GET", "/v3/users/{user_id}", self.get_user),
            Route("PATCH", "/v3/users/{user_id}", self.update_user),
            Route("DELETE", "/v3/users/{user_id}", self.delete_user),
            Route("POST", "/v3/users/{user_id}/password", self.change_password),
            Route("GET", "/v3/users/{user_id}/projects", self.user_projects),
            Route("GET", "/v3/users/{user_id}/groups", self.user_groups),
            Route("POST", "/v3/groups", self.create_group),
            Route("GET", "/v3/groups", self.list_groups),
            Route("GET", "/v3/groups/{group_id}", self.get_group),
            Route("PATCH", "/v3/groups/{group_id}", self.update_group),
            Route("DELETE", "/v3/groups/{group_id}", self.delete_group),
            Route("GET", "/v3/groups/{group_id}/users", self.group_users),
            Route("GET", "/v3/groups/{group_id}/users/{user_id}", self.check_member),
            Route("PUT", "/v3/groups/{group_id}/users/{user_id}", self.add_member),
            Route("DELETE", "/v3/groups/{group_id}/users/{user_id}", self.remove_member),
        ]
        return with_head(out)

    # --- users -----------------------------------------------------------------------------------

    async def _hash(self, password: str | None) -> str | None:
        return None if password is None else await asyncio.to_thread(hash_secret, password, self.svc.hash_rounds)

    async def create_user(self, request: web.Request) -> web.Response:
        c = ctx(request)
        body = (await read_json(request, rs.USER_CREATE))["user"]
        domain_id = body.get("domain_id") or c.domain_id or resources.DEFAULT_DOMAIN
        self.svc.enforce(c, "identity:create_user", {"target.user.domain_id": domain_id})
        hashed = await self._hash(body.get("password"))
        with self.svc.write() as s:
            out = views.user(base_url(request), users.create_user(s, body, domain_id, hashed))
        return json_response({"user": out}, 201)

    async def list_users(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "identity:list_users", {"domain_id": c.domain_id} if c.domain_id else {})
        q = request.query
        with self.svc.read() as s:
            found = users.list_users(s, name=q.get("name"), domain_id=c.domain_id or q.get("domain_id"),
                                         enabled=flag(request, "enabled"))
            # There are no federated users, so a federation filter matches nobody.
            federated = any(k in q for k in ("idp_id", "protocol_id", "unique_id"))
            items = [] if federated else [views.user(base_url(request), u) for u in found]
        return listing(request, "users", items)

    async def get_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        with self.svc.read() as s:
            user = s.get(User, user_id)
            self.svc.enforce(ctx(request), "identity:get_user", target("user", user_id, user))
            out = views.user(base_url(request), users.get_user(s, user_id))
        return json_response({"user": out})

    async def update_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        body = (await read_json(request, rs.USER_UPDATE))["user"]
        same_id(body, user_id)
        body.pop("id", None)
        with self.svc.read() as s:
            user = s.get(User, user_id)
            self.svc.enforce(ctx(request), "identity:update_user", target("user", user_id, user))
        hashed = await self._hash(body.get("password"))
        with self.svc.write() as s:
            out = views.user(base_url(request), users.update_user(s, self.svc.tokens, user_id, body, hashed))
        return json_response({"user": out})

    async def delete_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        with self.svc.write() as s:
            user = s.get(User, user_id)
            self.svc.enforce(ctx(request), "identity:delete_user", target("user", user_id, user))
            users.delete_user(s, self.svc.tokens, user_id)
        return empty()

    async def change_password(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        body = (await read_json(request, rs.PASSWORD_CHANGE))["user"]
        self.svc.enforce(ctx(request), "identity:change_password", {"user_id": user_id, "target.user.id": user_id})
        with self.svc.read() as s:
            user = s.get(User, user_id)
            checked = user.password_hash if user is not None else None
            enabled = user is not None and user.enabled
        if not enabled or not await asyncio.to_thread(check_secret, body["original_password"], checked):
            raise errors.Unauthorized("Error when changing user password: Invalid user / password")
        hashed = await asyncio.to_thread(hash_secret, body["password"], self.svc.hash_rounds)
        with self.svc.write() as s:
            users.change_password(s, self.svc.tokens, user_id, checked, hashed)
        return empty()

    async def user_projects(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        self.svc.enforce(ctx(request), "identity:list_user_projects", {"user_id": user_id, "target.user.id": user_id})
        q = request.query
        with self.svc.read() as s:
            found = resources.user_projects(s, user_id, name=q.get("name"), domain_id=q.get("domain_id"),
                                            enabled=flag(request, "enabled"))
            items = [views.project(base_url(request), p) for p in found]
        return listing(request, "projects", items)

    async def user_groups(self, request: web.Request) -> web.Response:
        c = ctx(request)
        user_id = request.match_info["user_id"]
        self.svc.enforce(c, "identity:list_groups_for_user", {"user_id": user_id, "target.user.id": user_id})
        with self.svc.read() as s:
            users.get_user(s, user_id)
            found = users.list_groups(s, name=request.query.get("name"), domain_id=c.domain_id, user_id=user_id)
            items = [{**views.group(base_url(request), g), "membership_expires_at": None} for g in found]
        return listing(request, "groups", items)

    # --- groups ----------------------------------------------------------------------------------

    async def create_group(self, request: web.Request) -> web.Response:
        c = ctx(request)
        body = (await read_json(request, rs.GROUP_CREATE))["group"]
        domain_id = body.get("domain_id") or c.domain_id or resources.DEFAULT_DOMAIN
        self.svc.enforce(c, "identity:create_group", {"target.group.domain_id": domain_id})
        with self.svc.write() as s:
            out = views.group(base_url(request), users.create_group(s, body, domain_id))
        return json_response({"group": out}, 201)

    async def list_groups(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "identity:list_groups", {"target.group.domain_id": c.domain_id} if c.domain_id else {})
        with self.svc.read() as s:
            found = users.list_groups(s, name=request.query.get("name"),
                                          domain_id=c.domain_id or request.query.get("domain_id"))
            items = [views.group(base_url(request), g) for g in found]
        return listing(request, "groups", items)

    async def get_group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group_id"]
        with self.svc.read() as s:
            group = s.get(Group, group_id)
            self.svc.enforce(ctx(request), "identity:get_group", target("group", group_id, group))
            out = views.group(base_url(request), users.get_group(s, group_id))
        return json_response({"group": out})

    async def update_group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group_id"]
        body = (await read_json(request, rs.GROUP_UPDATE))["group"]
        same_id(body, group_id)
        body.pop("id", None)
        with self.svc.write() as s:
            group = s.get(Group, group_id)
            self.svc.enforce(ctx(request), "identity:update_group", target("group", group_id, group))
            out = views.group(base_url(request), users.update_group(s, group_id, body))
        return json_response({"group": out})

    async def delete_group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group_id"]
        with self.svc.write() as s:
            group = s.get(Group, group_id)
            self.svc.enforce(ctx(request), "identity:delete_group", target("group", group_id, group))
            users.delete_group(s, self.svc.tokens, group_id)
        return empty()

    async def group_users(self, request: web.Request) -> web.Response:
        c = ctx(request)
        group_id = request.match_info["group_id"]
        q = request.query
        with self.svc.read() as s:
            group = s.get(Group, group_id)
            self.svc.enforce(c, "identity:list_users_in_group", target("group", group_id, group))
            users.get_group(s, group_id)
            found = users.list_users(s, group_id=group_id, name=q.get("name"), enabled=flag(request, "enabled"),
                                         domain_id=c.domain_id or q.get("domain_id"))
            items = [views.user(base_url(request), u) for u in found]
        return listing(request, "users", items)

    def _membership(self, request: web.Request, s: Session, rule: str) -> tuple[str, str]:
        group_id, user_id = request.match_info["group_id"], request.match_info["user_id"]
        group = s.get(Group, group_id)
        self.svc.enforce(ctx(request), rule, {**target("group", group_id, group), "target.user.id": user_id})
        return group_id, user_id

    async def check_member(self, request: web.Request) -> web.Response:
        with self.svc.read() as s:
            users.check_member(s, *self._membership(request, s, "identity:check_user_in_group"))
        return empty()

    async def add_member(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            users.add_member(s, *self._membership(request, s, "identity:add_user_to_group"))
        return empty()

    async def remove_member(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            group_id, user_id = self._membership(request, s, "identity:remove_user_from_group")
            users.remove_member(s, self.svc.tokens, group_id, user_id)
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return UsersAPI(svc).routes()
