"""``/v3/domains``, ``/v3/projects`` (with tags), ``/v3/users`` and ``/v3/groups`` as Keystone serves them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.web import Handler, Route, ctx, empty, json_response, read_json, validate
from tinystack.identity import resource_schemas as rs
from tinystack.identity import resources, roles, views
from tinystack.identity.api.common import base_url
from tinystack.identity.models import Domain, Group, Project, User
from tinystack.identity.passwords import check_secret, hash_secret
from tinystack.identity.service import IdentityService

_FALSE = ("0", "false", "f", "no", "n", "off")


def _flag(request: web.Request, name: str) -> bool | None:
    """Keystone's reading of a boolean query parameter: anything but a false word is true."""
    raw = request.query.get(name)
    return None if raw is None else raw.strip().lower() not in _FALSE


def _listing(request: web.Request, key: str, items: list[dict[str, Any]]) -> web.Response:
    return json_response(views.collection(base_url(request), request.path_qs.removeprefix("/v3/"), key, items))


def _target(kind: str, ident: str, obj: Any = None) -> dict[str, Any]:
    target = {f"target.{kind}.id": ident}
    if obj is not None and getattr(obj, "domain_id", None):
        target[f"target.{kind}.domain_id"] = obj.domain_id
    return target


def _same_id(body: dict[str, Any], ident: str) -> None:
    if body.get("id") is not None and body["id"] != ident:
        raise errors.BadRequest("Cannot change ID")


def _domain_project(base: str, d: Domain) -> dict[str, Any]:
    """A domain seen through the projects API, as Keystone's projects acting as domains."""
    return {**d.extra, "id": d.id, "name": d.name, "domain_id": None, "description": d.description,
            "enabled": d.enabled, "parent_id": None, "is_domain": True, "tags": list(d.tags), "options": {},
            "links": views.link(base, f"projects/{d.id}")}


def _head(handler: Handler) -> Handler:
    async def head(request: web.Request) -> web.StreamResponse:
        return empty((await handler(request)).status)

    return head


class ResourcesAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        out = [
            Route("POST", "/v3/domains", self.create_domain),
            Route("GET", "/v3/domains", self.list_domains),
            Route("GET", "/v3/domains/{domain_id}", self.get_domain),
            Route("PATCH", "/v3/domains/{domain_id}", self.update_domain),
            Route("DELETE", "/v3/domains/{domain_id}", self.delete_domain),
            Route("POST", "/v3/projects", self.create_project),
            Route("GET", "/v3/projects", self.list_projects),
            Route("GET", "/v3/projects/{project_id}", self.get_project),
            Route("PATCH", "/v3/projects/{project_id}", self.update_project),
            Route("DELETE", "/v3/projects/{project_id}", self.delete_project),
            Route("GET", "/v3/projects/{project_id}/tags", self.list_tags),
            Route("PUT", "/v3/projects/{project_id}/tags", self.set_tags),
            Route("DELETE", "/v3/projects/{project_id}/tags", self.clear_tags),
            Route("GET", "/v3/projects/{project_id}/tags/{tag}", self.check_tag),
            Route("PUT", "/v3/projects/{project_id}/tags/{tag}", self.add_tag),
            Route("DELETE", "/v3/projects/{project_id}/tags/{tag}", self.remove_tag),
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
        return out + [Route("HEAD", r.path, _head(r.handler)) for r in out if r.method == "GET"]

    def _admin(self, c: RequestContext) -> bool:
        return self.svc.allowed(c, "admin_required")

    # --- domains ---------------------------------------------------------------------------------

    async def create_domain(self, request: web.Request) -> web.Response:
        body = (await read_json(request, rs.DOMAIN_CREATE))["domain"]
        self.svc.enforce(ctx(request), "identity:create_domain", {})
        with self.svc.write() as s:
            out = views.domain(base_url(request), resources.create_domain(s, body))
        return json_response({"domain": out}, 201)

    async def list_domains(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "identity:list_domains", _target("domain", c.domain_id) if c.domain_id else {})
        with self.svc.read() as s:
            found = resources.list_domains(s, request.query.get("name"), _flag(request, "enabled"))
            items = [views.domain(base_url(request), d) for d in found if c.domain_id in (None, d.id)]
        return _listing(request, "domains", items)

    async def get_domain(self, request: web.Request) -> web.Response:
        domain_id = request.match_info["domain_id"]
        self.svc.enforce(ctx(request), "identity:get_domain", _target("domain", domain_id))
        with self.svc.read() as s:
            out = views.domain(base_url(request), resources.get_domain(s, domain_id))
        return json_response({"domain": out})

    async def update_domain(self, request: web.Request) -> web.Response:
        domain_id = request.match_info["domain_id"]
        body = (await read_json(request, rs.DOMAIN_UPDATE))["domain"]
        self.svc.enforce(ctx(request), "identity:update_domain", _target("domain", domain_id))
        _same_id(body, domain_id)
        with self.svc.write() as s:
            out = views.domain(base_url(request), resources.update_domain(s, self.svc.tokens, domain_id, body))
        return json_response({"domain": out})

    async def delete_domain(self, request: web.Request) -> web.Response:
        domain_id = request.match_info["domain_id"]
        self.svc.enforce(ctx(request), "identity:delete_domain", _target("domain", domain_id))
        with self.svc.write() as s:
            resources.delete_domain(s, domain_id)
        return empty()

    # --- projects --------------------------------------------------------------------------------

    async def create_project(self, request: web.Request) -> web.Response:
        c = ctx(request)
        body = (await read_json(request, rs.PROJECT_CREATE))["project"]
        domain_id = body.get("domain_id") or c.domain_id or resources.DEFAULT_DOMAIN
        self.svc.enforce(c, "identity:create_project", {"target.project.domain_id": domain_id})
        base = base_url(request)
        with self.svc.write() as s:
            if body.get("is_domain"):
                if body.get("domain_id") or body.get("parent_id"):
                    raise errors.BadRequest("only root projects are allowed to act as domains.")
                out = _domain_project(base, resources.create_domain(s, {
                    k: v for k, v in body.items() if k not in ("is_domain", "domain_id", "parent_id")}))
            else:
                out = views.project(base, resources.create_project(s, body, domain_id))
        return json_response({"project": out}, 201)

    async def list_projects(self, request: web.Request) -> web.Response:
        c = ctx(request)
        q = request.query
        self.svc.enforce(c, "identity:list_projects", {"target.domain_id": q.get("domain_id") or c.domain_id})
        tags = {k: q[k].split(",") for k in resources.TAG_FILTERS if k in q}
        base = base_url(request)
        with self.svc.read() as s:
            if _flag(request, "is_domain"):
                visible = None if self._admin(c) else set(roles.domains_with_roles(s, c.user_id))
                domains = [] if "domain_id" in q or "parent_id" in q else resources.list_domains(
                    s, q.get("name"), _flag(request, "enabled"))
                items = [_domain_project(base, d) for d in domains
                         if (visible is None or d.id in visible) and resources.tags_match(d.tags, tags)]
            else:
                # A domain-scoped caller that passed the policy lists its domain (filtered below).
                ids = None if self._admin(c) or c.domain_id else roles.projects_with_roles(s, c.user_id)
                found = resources.list_projects(s, name=q.get("name"), domain_id=q.get("domain_id"),
                                                enabled=_flag(request, "enabled"), parent_id=q.get("parent_id"),
                                                ids=ids, tags=tags)
                items = [views.project(base, p) for p in found if c.domain_id in (None, p.domain_id)]
        return _listing(request, "projects", items)

    async def get_project(self, request: web.Request) -> web.Response:
        c = ctx(request)
        project_id = request.match_info["project_id"]
        if _flag(request, "parents_as_list") and _flag(request, "parents_as_ids"):
            raise errors.BadRequest("Cannot use parents_as_list and parents_as_ids query params at the same time.")
        if _flag(request, "subtree_as_list") and _flag(request, "subtree_as_ids"):
            raise errors.BadRequest("Cannot use subtree_as_list and subtree_as_ids query params at the same time.")
        base = base_url(request)
        with self.svc.read() as s:
            project = s.get(Project, project_id)
            self.svc.enforce(c, "identity:get_project", _target("project", project_id, project))
            if project is None:
                domain = s.get(Domain, project_id)
                if domain is None:
                    raise errors.NotFound(f"Could not find project: {project_id}.")
                return json_response({"project": _domain_project(base, domain)})
            out = views.project(base, project)
            self._hierarchy(request, s, c, project, out)
        return json_response({"project": out})

    def _hierarchy(self, request: web.Request, s: Session, c: RequestContext, project: Project,
                   out: dict[str, Any]) -> None:
        """Keystone's ``parents_as_*`` and ``subtree_as_*`` expansions; the domain tops the parents."""
        if not any(_flag(request, f"{kind}_as_{form}") for kind in ("parents", "subtree") for form in ("ids", "list")):
            return
        base = base_url(request)
        visible = None if self._admin(c) else set(roles.projects_with_roles(s, c.user_id))
        parents = roles.project_lineage(s, project.id)[1:]
        if _flag(request, "parents_as_ids"):
            nested: dict[str, Any] | None = {project.domain_id: None}
            for parent in reversed(parents):
                nested = {parent.id: nested}
            out["parents"] = nested
        elif _flag(request, "parents_as_list"):
            out["parents"] = [{"project": views.project(base, p)} for p in parents if visible is None or p.id in visible]
        below = resources.subtree(s, project.id)
        if _flag(request, "subtree_as_ids"):
            def tree(pid: str) -> dict[str, Any] | None:
                kids = {p.id: tree(p.id) for p in below if p.parent_id == pid}
                return kids or None

            out["subtree"] = tree(project.id)
        elif _flag(request, "subtree_as_list"):
            out["subtree"] = [{"project": views.project(base, p)} for p in below if visible is None or p.id in visible]

    async def update_project(self, request: web.Request) -> web.Response:
        c = ctx(request)
        project_id = request.match_info["project_id"]
        body = (await read_json(request, rs.PROJECT_UPDATE))["project"]
        _same_id(body, project_id)
        body.pop("id", None)
        base = base_url(request)
        with self.svc.write() as s:
            project = s.get(Project, project_id)
            self.svc.enforce(c, "identity:update_project", _target("project", project_id, project))
            if project is None and s.get(Domain, project_id) is not None:
                out = _domain_project(base, self._update_domain_project(s, project_id, body))
            else:
                out = views.project(base, resources.update_project(s, self.svc.tokens, project_id, body))
        return json_response({"project": out})

    def _update_domain_project(self, s: Session, domain_id: str, body: dict[str, Any]) -> Domain:
        if body.get("is_domain") is False:
            raise errors.BadRequest("Update of `is_domain` is not allowed.")
        if body.get("parent_id") is not None:
            raise errors.Forbidden("Update of `parent_id` is not allowed.")
        if body.get("domain_id") is not None:
            raise errors.BadRequest("Cannot change Domain ID")
        return resources.update_domain(s, self.svc.tokens, domain_id, body)

    async def delete_project(self, request: web.Request) -> web.Response:
        c = ctx(request)
        project_id = request.match_info["project_id"]
        with self.svc.write() as s:
            project = s.get(Project, project_id)
            self.svc.enforce(c, "identity:delete_project", _target("project", project_id, project))
            domain = s.get(Domain, project_id) if project is None else None
            if domain is None:
                resources.delete_project(s, self.svc.tokens, project_id)
            elif domain.enabled:
                raise errors.BadRequest(f"cannot delete an enabled project acting as a domain. "
                                        f"Please disable the project {project_id} first.")
            else:
                resources.delete_domain(s, project_id)
        return empty()

    # --- project tags ----------------------------------------------------------------------------

    def _tags_response(self, request: web.Request, tags: list[str]) -> web.Response:
        return json_response({"tags": tags, "links": {"self": f"{base_url(request)}{request.path}"}})

    def _enforce_project(self, request: web.Request, rule: str) -> str:
        project_id = request.match_info["project_id"]
        self.svc.enforce(ctx(request), rule, _target("project", project_id))
        return project_id

    async def list_tags(self, request: web.Request) -> web.Response:
        project_id = self._enforce_project(request, "identity:list_project_tags")
        with self.svc.read() as s:
            tags = list(resources.get_project(s, project_id).tags)
        return self._tags_response(request, tags)

    async def set_tags(self, request: web.Request) -> web.Response:
        body = await read_json(request, rs.TAGS_UPDATE)
        project_id = self._enforce_project(request, "identity:update_project_tags")
        with self.svc.write() as s:
            tags = resources.set_tags(s, project_id, body["tags"])
        return self._tags_response(request, tags)

    async def clear_tags(self, request: web.Request) -> web.Response:
        project_id = self._enforce_project(request, "identity:delete_project_tags")
        with self.svc.write() as s:
            resources.set_tags(s, project_id, [])
        return empty()

    async def check_tag(self, request: web.Request) -> web.Response:
        project_id = self._enforce_project(request, "identity:get_project_tag")
        with self.svc.read() as s:
            resources.check_tag(s, project_id, request.match_info["tag"])
        return empty()

    async def add_tag(self, request: web.Request) -> web.Response:
        project_id = self._enforce_project(request, "identity:create_project_tag")
        tag = request.match_info["tag"]
        validate(tag, rs.TAG)
        with self.svc.write() as s:
            validate([*resources.get_project(s, project_id).tags, tag], rs.TAG_LIST)
            resources.add_tag(s, project_id, tag)
        return empty(201, {"Location": f"{base_url(request)}{request.path}"})

    async def remove_tag(self, request: web.Request) -> web.Response:
        project_id = self._enforce_project(request, "identity:delete_project_tag")
        with self.svc.write() as s:
            resources.remove_tag(s, project_id, request.match_info["tag"])
        return empty()

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
            out = views.user(base_url(request), resources.create_user(s, body, domain_id, hashed))
        return json_response({"user": out}, 201)

    async def list_users(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "identity:list_users", {"domain_id": c.domain_id} if c.domain_id else {})
        q = request.query
        with self.svc.read() as s:
            found = resources.list_users(s, name=q.get("name"), domain_id=c.domain_id or q.get("domain_id"),
                                         enabled=_flag(request, "enabled"))
            # There are no federated users, so a federation filter matches nobody.
            federated = any(k in q for k in ("idp_id", "protocol_id", "unique_id"))
            items = [] if federated else [views.user(base_url(request), u) for u in found]
        return _listing(request, "users", items)

    async def get_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        with self.svc.read() as s:
            user = s.get(User, user_id)
            self.svc.enforce(ctx(request), "identity:get_user", _target("user", user_id, user))
            out = views.user(base_url(request), resources.get_user(s, user_id))
        return json_response({"user": out})

    async def update_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        body = (await read_json(request, rs.USER_UPDATE))["user"]
        _same_id(body, user_id)
        body.pop("id", None)
        with self.svc.read() as s:
            user = s.get(User, user_id)
            self.svc.enforce(ctx(request), "identity:update_user", _target("user", user_id, user))
        hashed = await self._hash(body.get("password"))
        with self.svc.write() as s:
            out = views.user(base_url(request), resources.update_user(s, self.svc.tokens, user_id, body, hashed))
        return json_response({"user": out})

    async def delete_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        with self.svc.write() as s:
            user = s.get(User, user_id)
            self.svc.enforce(ctx(request), "identity:delete_user", _target("user", user_id, user))
            resources.delete_user(s, self.svc.tokens, user_id)
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
            resources.change_password(s, self.svc.tokens, user_id, checked, hashed)
        return empty()

    async def user_projects(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        self.svc.enforce(ctx(request), "identity:list_user_projects", {"user_id": user_id, "target.user.id": user_id})
        q = request.query
        with self.svc.read() as s:
            found = resources.user_projects(s, user_id, name=q.get("name"), domain_id=q.get("domain_id"),
                                            enabled=_flag(request, "enabled"))
            items = [views.project(base_url(request), p) for p in found]
        return _listing(request, "projects", items)

    async def user_groups(self, request: web.Request) -> web.Response:
        c = ctx(request)
        user_id = request.match_info["user_id"]
        self.svc.enforce(c, "identity:list_groups_for_user", {"user_id": user_id, "target.user.id": user_id})
        with self.svc.read() as s:
            resources.get_user(s, user_id)
            found = resources.list_groups(s, name=request.query.get("name"), domain_id=c.domain_id, user_id=user_id)
            items = [{**views.group(base_url(request), g), "membership_expires_at": None} for g in found]
        return _listing(request, "groups", items)

    # --- groups ----------------------------------------------------------------------------------

    async def create_group(self, request: web.Request) -> web.Response:
        c = ctx(request)
        body = (await read_json(request, rs.GROUP_CREATE))["group"]
        domain_id = body.get("domain_id") or c.domain_id or resources.DEFAULT_DOMAIN
        self.svc.enforce(c, "identity:create_group", {"target.group.domain_id": domain_id})
        with self.svc.write() as s:
            out = views.group(base_url(request), resources.create_group(s, body, domain_id))
        return json_response({"group": out}, 201)

    async def list_groups(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "identity:list_groups", {"target.group.domain_id": c.domain_id} if c.domain_id else {})
        with self.svc.read() as s:
            found = resources.list_groups(s, name=request.query.get("name"),
                                          domain_id=c.domain_id or request.query.get("domain_id"))
            items = [views.group(base_url(request), g) for g in found]
        return _listing(request, "groups", items)

    async def get_group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group_id"]
        with self.svc.read() as s:
            group = s.get(Group, group_id)
            self.svc.enforce(ctx(request), "identity:get_group", _target("group", group_id, group))
            out = views.group(base_url(request), resources.get_group(s, group_id))
        return json_response({"group": out})

    async def update_group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group_id"]
        body = (await read_json(request, rs.GROUP_UPDATE))["group"]
        _same_id(body, group_id)
        body.pop("id", None)
        with self.svc.write() as s:
            group = s.get(Group, group_id)
            self.svc.enforce(ctx(request), "identity:update_group", _target("group", group_id, group))
            out = views.group(base_url(request), resources.update_group(s, group_id, body))
        return json_response({"group": out})

    async def delete_group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["group_id"]
        with self.svc.write() as s:
            group = s.get(Group, group_id)
            self.svc.enforce(ctx(request), "identity:delete_group", _target("group", group_id, group))
            resources.delete_group(s, self.svc.tokens, group_id)
        return empty()

    async def group_users(self, request: web.Request) -> web.Response:
        c = ctx(request)
        group_id = request.match_info["group_id"]
        q = request.query
        with self.svc.read() as s:
            group = s.get(Group, group_id)
            self.svc.enforce(c, "identity:list_users_in_group", _target("group", group_id, group))
            resources.get_group(s, group_id)
            found = resources.list_users(s, group_id=group_id, name=q.get("name"), enabled=_flag(request, "enabled"),
                                         domain_id=c.domain_id or q.get("domain_id"))
            items = [views.user(base_url(request), u) for u in found]
        return _listing(request, "users", items)

    def _membership(self, request: web.Request, s: Session, rule: str) -> tuple[str, str]:
        group_id, user_id = request.match_info["group_id"], request.match_info["user_id"]
        group = s.get(Group, group_id)
        self.svc.enforce(ctx(request), rule, {**_target("group", group_id, group), "target.user.id": user_id})
        return group_id, user_id

    async def check_member(self, request: web.Request) -> web.Response:
        with self.svc.read() as s:
            resources.check_member(s, *self._membership(request, s, "identity:check_user_in_group"))
        return empty()

    async def add_member(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            resources.add_member(s, *self._membership(request, s, "identity:add_user_to_group"))
        return empty()

    async def remove_member(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            group_id, user_id = self._membership(request, s, "identity:remove_user_from_group")
            resources.remove_member(s, self.svc.tokens, group_id, user_id)
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return ResourcesAPI(svc).routes()
