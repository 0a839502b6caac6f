"""``/v3/users`` (with a user's projects and groups) and ``/v3/groups`` (with members) as Keystone serves them."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import resource_schemas as rs
from tinystack.identity import views
from tinystack.identity.api.common import base_url, flag, listing, with_head
from tinystack.identity.resource_common import same_id
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
            # Public: a user whose password expired has no token to change it with (Keystone's way).
            Route("POST", "/v3/users/{user_id}/password", self.change_password, public=True),
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

    async def create_user(self, request: web.Request) -> web.Response:
        body = (await read_json(request, rs.USER_CREATE))["user"]
        user = await self.svc.users.create_user(ctx(request), body)
        return json_response({"user": views.user(base_url(request), user)}, 201)

    async def list_users(self, request: web.Request) -> web.Response:
        q = request.query
        found = self.svc.users.list_users(ctx(request), name=q.get("name"), domain_id=q.get("domain_id"),
                                          enabled=flag(request, "enabled"),
                                          federated=any(k in q for k in ("idp_id", "protocol_id", "unique_id")))
        return listing(request, "users", [views.user(base_url(request), u) for u in found])

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.svc.users.get_user(ctx(request), request.match_info["user_id"])
        return json_response({"user": views.user(base_url(request), user)})

    async def update_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        body = (await read_json(request, rs.USER_UPDATE))["user"]
        same_id(body, user_id)
        body.pop("id", None)
        user = await self.svc.users.update_user(ctx(request), user_id, body)
        return json_response({"user": views.user(base_url(request), user)})

    async def delete_user(self, request: web.Request) -> web.Response:
        await self.svc.users.delete_user(ctx(request), request.match_info["user_id"])
        return empty()

    async def change_password(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-Auth-Token")
        caller = self.svc.validate(token) if token else None
        body = (await read_json(request, rs.PASSWORD_CHANGE))["user"]
        await self.svc.users.change_password(caller, request.match_info["user_id"], body["original_password"],
                                             body["password"])
        return empty()

    async def user_projects(self, request: web.Request) -> web.Response:
        q = request.query
        found = self.svc.users.user_projects(ctx(request), request.match_info["user_id"], name=q.get("name"),
                                             domain_id=q.get("domain_id"), enabled=flag(request, "enabled"))
        return listing(request, "projects", [views.project(base_url(request), p) for p in found])

    async def user_groups(self, request: web.Request) -> web.Response:
        found = self.svc.users.user_groups(ctx(request), request.match_info["user_id"], name=request.query.get("name"))
        items = [{**views.group(base_url(request), g), "membership_expires_at": None} for g in found]
        return listing(request, "groups", items)

    # --- groups ----------------------------------------------------------------------------------

    async def create_group(self, request: web.Request) -> web.Response:
        body = (await read_json(request, rs.GROUP_CREATE))["group"]
        group = await self.svc.users.create_group(ctx(request), body)
        return json_response({"group": views.group(base_url(request), group)}, 201)

    async def list_groups(self, request: web.Request) -> web.Response:
        found = self.svc.users.list_groups(ctx(request), name=request.query.get("name"),
                                           domain_id=request.query.get("domain_id"))
        return listing(request, "groups", [views.group(base_url(request), g) for g in found])

    async def get_group(self, request: web.Request) -> web.Response:
        group = self.svc.users.get_group(ctx(request), request.match_info["group_id"])
        return json_response({"group": views.group(base_url(request), group)})

    async def update_group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group_id"]
        body = (await read_json(request, rs.GROUP_UPDATE))["group"]
        same_id(body, group_id)
        body.pop("id", None)
        group = await self.svc.users.update_group(ctx(request), group_id, body)
        return json_response({"group": views.group(base_url(request), group)})

    async def delete_group(self, request: web.Request) -> web.Response:
        await self.svc.users.delete_group(ctx(request), request.match_info["group_id"])
        return empty()

    async def group_users(self, request: web.Request) -> web.Response:
        q = request.query
        found = self.svc.users.group_users(ctx(request), request.match_info["group_id"], name=q.get("name"),
                                           domain_id=q.get("domain_id"), enabled=flag(request, "enabled"))
        return listing(request, "users", [views.user(base_url(request), u) for u in found])

    async def check_member(self, request: web.Request) -> web.Response:
        m = request.match_info
        self.svc.users.check_member(ctx(request), m["group_id"], m["user_id"])
        return empty()

    async def add_member(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.svc.users.add_member(ctx(request), m["group_id"], m["user_id"])
        return empty()

    async def remove_member(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.svc.users.remove_member(ctx(request), m["group_id"], m["user_id"])
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return UsersAPI(svc).routes()
