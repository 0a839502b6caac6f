"""``/v3/domains`` and ``/v3/projects`` (with tags) as Keystone serves them; users and groups are in
``users.py``."""

from __future__ import annotations

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import resource_schemas as rs
from tinystack.identity import resources, views
from tinystack.identity.api.common import base_url, flag, listing, with_head
from tinystack.identity.resource_common import same_id
from tinystack.identity.resource_ops import ProjectFilter, ProjectTree
from tinystack.identity.service import IdentityService

EXPANSIONS = tuple(f"{kind}_as_{form}" for kind in ("parents", "subtree") for form in ("ids", "list"))


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

    # --- domains ---------------------------------------------------------------------------------

    async def create_domain(self, request: web.Request) -> web.Response:
        body = (await read_json(request, rs.DOMAIN_CREATE))["domain"]
        domain = await self.svc.resources.create_domain(ctx(request), body)
        return json_response({"domain": views.domain(base_url(request), domain)}, 201)

    async def list_domains(self, request: web.Request) -> web.Response:
        found = self.svc.resources.list_domains(ctx(request), name=request.query.get("name"),
                                                enabled=flag(request, "enabled"))
        return listing(request, "domains", [views.domain(base_url(request), d) for d in found])

    async def get_domain(self, request: web.Request) -> web.Response:
        domain = self.svc.resources.get_domain(ctx(request), request.match_info["domain_id"])
        return json_response({"domain": views.domain(base_url(request), domain)})

    async def update_domain(self, request: web.Request) -> web.Response:
        body = (await read_json(request, rs.DOMAIN_UPDATE))["domain"]
        domain = await self.svc.resources.update_domain(ctx(request), request.match_info["domain_id"], body)
        return json_response({"domain": views.domain(base_url(request), domain)})

    async def delete_domain(self, request: web.Request) -> web.Response:
        await self.svc.resources.delete_domain(ctx(request), request.match_info["domain_id"])
        return empty()

    # --- projects --------------------------------------------------------------------------------

    async def create_project(self, request: web.Request) -> web.Response:
        body = (await read_json(request, rs.PROJECT_CREATE))["project"]
        project = await self.svc.resources.create_project(ctx(request), body)
        return json_response({"project": views.any_project(base_url(request), project)}, 201)

    async def list_projects(self, request: web.Request) -> web.Response:
        q = request.query
        f = ProjectFilter(name=q.get("name"), domain_id=q.get("domain_id"), parent_id=q.get("parent_id"),
                          enabled=flag(request, "enabled"), is_domain=flag(request, "is_domain"),
                          tags={k: q[k].split(",") for k in resources.TAG_FILTERS if k in q},
                          has_domain_id="domain_id" in q, has_parent_id="parent_id" in q)
        found = self.svc.resources.list_projects(ctx(request), f)
        return listing(request, "projects", [views.any_project(base_url(request), p) for p in found])

    async def get_project(self, request: web.Request) -> web.Response:
        if flag(request, "parents_as_list") and flag(request, "parents_as_ids"):
            raise errors.BadRequest("Cannot use parents_as_list and parents_as_ids query params at the same time.")
        if flag(request, "subtree_as_list") and flag(request, "subtree_as_ids"):
            raise errors.BadRequest("Cannot use subtree_as_list and subtree_as_ids query params at the same time.")
        expand = {name for name in EXPANSIONS if flag(request, name)}
        found = self.svc.resources.get_project(ctx(request), request.match_info["project_id"], bool(expand))
        base = base_url(request)
        out = views.project_tree(base, found, expand) if isinstance(found, ProjectTree) else views.any_project(base, found)
        return json_response({"project": out})

    async def update_project(self, request: web.Request) -> web.Response:
        project_id = request.match_info["project_id"]
        body = (await read_json(request, rs.PROJECT_UPDATE))["project"]
        same_id(body, project_id)
        body.pop("id", None)
        project = await self.svc.resources.update_project(ctx(request), project_id, body)
        return json_response({"project": views.any_project(base_url(request), project)})

    async def delete_project(self, request: web.Request) -> web.Response:
        await self.svc.resources.delete_project(ctx(request), request.match_info["project_id"])
        return empty()

    # --- project tags ----------------------------------------------------------------------------

    def _tags_response(self, request: web.Request, tags: list[str]) -> web.Response:
        return json_response({"tags": tags, "links": {"self": f"{base_url(request)}{request.path}"}})

    async def list_tags(self, request: web.Request) -> web.Response:
        return self._tags_response(request, self.svc.resources.list_tags(ctx(request), request.match_info["project_id"]))

    async def set_tags(self, request: web.Request) -> web.Response:
        body = await read_json(request, rs.TAGS_UPDATE)
        tags = await self.svc.resources.set_tags(ctx(request), request.match_info["project_id"], body["tags"])
        return self._tags_response(request, tags)

    async def clear_tags(self, request: web.Request) -> web.Response:
        await self.svc.resources.clear_tags(ctx(request), request.match_info["project_id"])
        return empty()

    async def check_tag(self, request: web.Request) -> web.Response:
        self.svc.resources.check_tag(ctx(request), request.match_info["project_id"], request.match_info["tag"])
        return empty()

    async def add_tag(self, request: web.Request) -> web.Response:
        await self.svc.resources.add_tag(ctx(request), request.match_info["project_id"], request.match_info["tag"])
        return empty(201, {"Location": f"{base_url(request)}{request.path}"})

    async def remove_tag(self, request: web.Request) -> web.Response:
        await self.svc.resources.remove_tag(ctx(request), request.match_info["project_id"], request.match_info["tag"])
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return ResourcesAPI(svc).routes()
