"""``/v3/domains`` and ``/v3/projects`` (with tags) as Keystone serves them; users and groups are in
``users.py``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.web import Route, ctx, empty, json_response, read_json, validate
from tinystack.identity import resource_schemas as rs
from tinystack.identity import resources, roles, views
from tinystack.identity.api.common import base_url, flag, listing, same_id, target, with_head
from tinystack.identity.models import Domain, Project
from tinystack.identity.service import IdentityService


def _domain_project(base: str, d: Domain) -> dict[str, Any]:
    """A domain seen through the projects API, as Keystone's projects acting as domains."""
    return {**d.extra, "id": d.id, "name": d.name, "domain_id": None, "description": d.description,
            "enabled": d.enabled, "parent_id": None, "is_domain": True, "tags": list(d.tags), "options": {},
            "links": views.link(base, f"projects/{d.id}")}


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
        ]
        return with_head(out)

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
        self.svc.enforce(c, "identity:list_domains", target("domain", c.domain_id) if c.domain_id else {})
        with self.svc.read() as s:
            found = resources.list_domains(s, request.query.get("name"), flag(request, "enabled"))
            items = [views.domain(base_url(request), d) for d in found if c.domain_id in (None, d.id)]
        return listing(request, "domains", items)

    async def get_domain(self, request: web.Request) -> web.Response:
        domain_id = request.match_info["domain_id"]
        self.svc.enforce(ctx(request), "identity:get_domain", target("domain", domain_id))
        with self.svc.read() as s:
            out = views.domain(base_url(request), resources.get_domain(s, domain_id))
        return json_response({"domain": out})

    async def update_domain(self, request: web.Request) -> web.Response:
        domain_id = request.match_info["domain_id"]
        body = (await read_json(request, rs.DOMAIN_UPDATE))["domain"]
        self.svc.enforce(ctx(request), "identity:update_domain", target("domain", domain_id))
        same_id(body, domain_id)
        with self.svc.write() as s:
            out = views.domain(base_url(request), resources.update_domain(s, self.svc.tokens, domain_id, body))
        return json_response({"domain": out})

    async def delete_domain(self, request: web.Request) -> web.Response:
        domain_id = request.match_info["domain_id"]
        self.svc.enforce(ctx(request), "identity:delete_domain", target("domain", domain_id))
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
            if flag(request, "is_domain"):
                visible = None if self._admin(c) else set(roles.domains_with_roles(s, c.user_id))
                domains = [] if "domain_id" in q or "parent_id" in q else resources.list_domains(
                    s, q.get("name"), flag(request, "enabled"))
                items = [_domain_project(base, d) for d in domains
                         if (visible is None or d.id in visible) and resources.tags_match(d.tags, tags)]
            else:
                # A domain-scoped caller that passed the policy lists its domain (filtered below).
                ids = None if self._admin(c) or c.domain_id else roles.projects_with_roles(s, c.user_id)
                found = resources.list_projects(s, name=q.get("name"), domain_id=q.get("domain_id"),
                                                enabled=flag(request, "enabled"), parent_id=q.get("parent_id"),
                                                ids=ids, tags=tags)
                items = [views.project(base, p) for p in found if c.domain_id in (None, p.domain_id)]
        return listing(request, "projects", items)

    async def get_project(self, request: web.Request) -> web.Response:
        c = ctx(request)
        project_id = request.match_info["project_id"]
        if flag(request, "parents_as_list") and flag(request, "parents_as_ids"):
            raise errors.BadRequest("Cannot use parents_as_list and parents_as_ids query params at the same time.")
        if flag(request, "subtree_as_list") and flag(request, "subtree_as_ids"):
            raise errors.BadRequest("Cannot use subtree_as_list and subtree_as_ids query params at the same time.")
        base = base_url(request)
        with self.svc.read() as s:
            project = s.get(Project, project_id)
            self.svc.enforce(c, "identity:get_project", target("project", project_id, project))
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
        if not any(flag(request, f"{kind}_as_{form}") for kind in ("parents", "subtree") for form in ("ids", "list")):
            return
        base = base_url(request)
        visible = None if self._admin(c) else set(roles.projects_with_roles(s, c.user_id))
        parents = roles.project_lineage(s, project.id)[1:]
        if flag(request, "parents_as_ids"):
            nested: dict[str, Any] | None = {project.domain_id: None}
            for parent in reversed(parents):
                nested = {parent.id: nested}
            out["parents"] = nested
        elif flag(request, "parents_as_list"):
            out["parents"] = [{"project": views.project(base, p)} for p in parents if visible is None or p.id in visible]
        below = resources.subtree(s, project.id)
        if flag(request, "subtree_as_ids"):
            def tree(pid: str) -> dict[str, Any] | None:
                kids = {p.id: tree(p.id) for p in below if p.parent_id == pid}
                return kids or None

            out["subtree"] = tree(project.id)
        elif flag(request, "subtree_as_list"):
            out["subtree"] = [{"project": views.project(base, p)} for p in below if visible is None or p.id in visible]

    async def update_project(self, request: web.Request) -> web.Response:
        c = ctx(request)
        project_id = request.match_info["project_id"]
        body = (await read_json(request, rs.PROJECT_UPDATE))["project"]
        same_id(body, project_id)
        body.pop("id", None)
        base = base_url(request)
        with self.svc.write() as s:
            project = s.get(Project, project_id)
            self.svc.enforce(c, "identity:update_project", target("project", project_id, project))
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
            self.svc.enforce(c, "identity:delete_project", target("project", project_id, project))
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
        self.svc.enforce(ctx(request), rule, target("project", project_id))
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


def routes(svc: IdentityService) -> list[Route]:
    return ResourcesAPI(svc).routes()
