"""``/v3/OS-EP-FILTER``: endpoint groups, and the endpoints and endpoint groups given to projects."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import endpoint_filter_schemas as schemas
from tinystack.identity import views
from tinystack.identity.api.common import base_url, listing, with_head
from tinystack.identity.service import IdentityService

EP = "/v3/OS-EP-FILTER"
GROUP = EP + "/endpoint_groups/{group_id}"


class EndpointFilterAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc
        self.ef = svc.endpoint_filter

    def routes(self) -> list[Route]:
        return with_head([
            Route("POST", EP + "/endpoint_groups", self.create_group),
            Route("GET", EP + "/endpoint_groups", self.list_groups),
            Route("GET", GROUP, self.get_group),
            Route("PATCH", GROUP, self.update_group),
            Route("DELETE", GROUP, self.delete_group),
            Route("GET", GROUP + "/projects", self.group_projects),
            Route("GET", GROUP + "/endpoints", self.group_endpoints),
            Route("GET", GROUP + "/projects/{project_id}", self.check_group_project),
            Route("PUT", GROUP + "/projects/{project_id}", self.add_group_project),
            Route("DELETE", GROUP + "/projects/{project_id}", self.remove_group_project),
            Route("GET", EP + "/projects/{project_id}/endpoint_groups", self.project_groups),
            Route("GET", EP + "/projects/{project_id}/endpoints", self.project_endpoints),
            Route("GET", EP + "/projects/{project_id}/endpoints/{endpoint_id}", self.check_project_endpoint),
            Route("PUT", EP + "/projects/{project_id}/endpoints/{endpoint_id}", self.add_project_endpoint),
            Route("DELETE", EP + "/projects/{project_id}/endpoints/{endpoint_id}", self.remove_project_endpoint),
            Route("GET", EP + "/endpoints/{endpoint_id}/projects", self.endpoint_projects),
        ])

    # --- endpoint groups -------------------------------------------------------------------------

    async def create_group(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.GROUP_CREATE))["endpoint_group"]
        group = await self.ef.create_group(ctx(request), body)
        return json_response({"endpoint_group": views.endpoint_group(base_url(request), group)}, 201)

    async def list_groups(self, request: web.Request) -> web.Response:
        found = self.ef.list_groups(ctx(request), request.query.get("name"))
        return listing(request, "endpoint_groups", [views.endpoint_group(base_url(request), g) for g in found])

    async def get_group(self, request: web.Request) -> web.Response:
        group = self.ef.get_group(ctx(request), request.match_info["group_id"])
        return json_response({"endpoint_group": views.endpoint_group(base_url(request), group)})

    async def update_group(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.GROUP_UPDATE))["endpoint_group"]
        group = await self.ef.update_group(ctx(request), request.match_info["group_id"], body)
        return json_response({"endpoint_group": views.endpoint_group(base_url(request), group)})

    async def delete_group(self, request: web.Request) -> web.Response:
        await self.ef.delete_group(ctx(request), request.match_info["group_id"])
        return empty()

    async def group_projects(self, request: web.Request) -> web.Response:
        found = self.ef.group_projects(ctx(request), request.match_info["group_id"])
        return listing(request, "projects", [views.project(base_url(request), p) for p in found])

    async def group_endpoints(self, request: web.Request) -> web.Response:
        found = self.ef.group_endpoints(ctx(request), request.match_info["group_id"])
        return listing(request, "endpoints", [views.endpoint(base_url(request), e) for e in found])

    async def check_group_project(self, request: web.Request) -> web.Response:
        m = request.match_info
        self.ef.check_group_project(ctx(request), m["group_id"], m["project_id"])
        group = self.ef.get_group(ctx(request), m["group_id"])
        return json_response({"endpoint_group": views.endpoint_group(base_url(request), group)})

    async def add_group_project(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.ef.add_group_project(ctx(request), m["group_id"], m["project_id"])
        return empty()

    async def remove_group_project(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.ef.remove_group_project(ctx(request), m["group_id"], m["project_id"])
        return empty()

    async def project_groups(self, request: web.Request) -> web.Response:
        found = self.ef.project_groups(ctx(request), request.match_info["project_id"])
        return listing(request, "endpoint_groups", [views.endpoint_group(base_url(request), g) for g in found])

    # --- projects and endpoints ------------------------------------------------------------------

    async def project_endpoints(self, request: web.Request) -> web.Response:
        found = self.ef.project_endpoints(ctx(request), request.match_info["project_id"])
        return listing(request, "endpoints", [views.endpoint(base_url(request), e) for e in found])

    async def check_project_endpoint(self, request: web.Request) -> web.Response:
        m = request.match_info
        self.ef.check_project_endpoint(ctx(request), m["project_id"], m["endpoint_id"])
        return empty()

    async def add_project_endpoint(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.ef.add_project_endpoint(ctx(request), m["project_id"], m["endpoint_id"])
        return empty()

    async def remove_project_endpoint(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.ef.remove_project_endpoint(ctx(request), m["project_id"], m["endpoint_id"])
        return empty()

    async def endpoint_projects(self, request: web.Request) -> web.Response:
        found = self.ef.endpoint_projects(ctx(request), request.match_info["endpoint_id"])
        return listing(request, "projects", [views.project(base_url(request), p) for p in found])


def routes(svc: IdentityService) -> list[Route]:
    return EndpointFilterAPI(svc).routes()
