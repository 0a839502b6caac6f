"""Requests on OS-EP-FILTER (endpoint groups, endpoints and groups given to projects): the policy check, the
transaction and the rules of ``endpoint_filter.py``. Every rule is the admin's, as Keystone's defaults."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.identity import endpoint_filter as ef
from tinystack.identity.models import Endpoint, EndpointGroup, Project

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService

T = TypeVar("T")


class EndpointFilter:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def _read(self, ctx: RequestContext, action: str, fn: Callable[[Session], T]) -> T:
        self.svc.enforce(ctx, f"identity:{action}", {})
        with self.svc.session() as s:
            return fn(s)

    async def _write(self, ctx: RequestContext, action: str, fn: Callable[[Session], T]) -> T:
        self.svc.enforce(ctx, f"identity:{action}", {})
        return await self.svc.write(fn)

    # --- endpoint groups -------------------------------------------------------------------------

    async def create_group(self, ctx: RequestContext, body: Mapping[str, Any]) -> EndpointGroup:
        return await self._write(ctx, "create_endpoint_group", lambda s: ef.create_group(s, body))

    def list_groups(self, ctx: RequestContext, name: str | None) -> list[EndpointGroup]:
        return self._read(ctx, "list_endpoint_groups", lambda s: ef.list_groups(s, name))

    def get_group(self, ctx: RequestContext, group_id: str) -> EndpointGroup:
        return self._read(ctx, "get_endpoint_group", lambda s: ef.get_group(s, group_id))

    async def update_group(self, ctx: RequestContext, group_id: str, body: Mapping[str, Any]) -> EndpointGroup:
        return await self._write(ctx, "update_endpoint_group", lambda s: ef.update_group(s, group_id, body))

    async def delete_group(self, ctx: RequestContext, group_id: str) -> None:
        await self._write(ctx, "delete_endpoint_group", lambda s: ef.delete_group(s, group_id))

    def group_projects(self, ctx: RequestContext, group_id: str) -> list[Project]:
        return self._read(ctx, "list_projects_associated_with_endpoint_group",
                          lambda s: ef.group_projects(s, group_id))

    def group_endpoints(self, ctx: RequestContext, group_id: str) -> list[Endpoint]:
        return self._read(ctx, "list_endpoints_associated_with_endpoint_group",
                          lambda s: ef.group_endpoints(s, ef.get_group(s, group_id)))

    def check_group_project(self, ctx: RequestContext, group_id: str, project_id: str) -> None:
        self._read(ctx, "get_endpoint_group_in_project", lambda s: ef.check_group_project(s, group_id, project_id))

    async def add_group_project(self, ctx: RequestContext, group_id: str, project_id: str) -> None:
        await self._write(ctx, "add_endpoint_group_to_project",
                          lambda s: ef.add_group_project(s, group_id, project_id))

    async def remove_group_project(self, ctx: RequestContext, group_id: str, project_id: str) -> None:
        await self._write(ctx, "remove_endpoint_group_from_project",
                          lambda s: ef.remove_group_project(s, group_id, project_id))

    def project_groups(self, ctx: RequestContext, project_id: str) -> list[EndpointGroup]:
        return self._read(ctx, "list_endpoint_groups_for_project", lambda s: ef.project_groups(s, project_id))

    # --- projects and endpoints ------------------------------------------------------------------

    async def add_project_endpoint(self, ctx: RequestContext, project_id: str, endpoint_id: str) -> None:
        await self._write(ctx, "add_endpoint_to_project",
                          lambda s: ef.add_project_endpoint(s, project_id, endpoint_id))

    def check_project_endpoint(self, ctx: RequestContext, project_id: str, endpoint_id: str) -> None:
        self._read(ctx, "check_endpoint_in_project", lambda s: ef.check_project_endpoint(s, project_id, endpoint_id))

    async def remove_project_endpoint(self, ctx: RequestContext, project_id: str, endpoint_id: str) -> None:
        await self._write(ctx, "remove_endpoint_from_project",
                          lambda s: ef.remove_project_endpoint(s, project_id, endpoint_id))

    def project_endpoints(self, ctx: RequestContext, project_id: str) -> list[Endpoint]:
        return self._read(ctx, "list_endpoints_for_project", lambda s: ef.project_endpoints(s, project_id))

    def endpoint_projects(self, ctx: RequestContext, endpoint_id: str) -> list[Project]:
        return self._read(ctx, "list_projects_for_endpoint", lambda s: ef.endpoint_projects(s, endpoint_id))
