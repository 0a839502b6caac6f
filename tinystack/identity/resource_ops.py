"""Requests on domains and projects (with tags and the projects acting as domains): the policy check, the
transaction and the rules of ``resources.py``, for a caller's context. Writes run off the event loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.jsonio import validate
from tinystack.identity import resource_schemas as rs
from tinystack.identity import resources, roles
from tinystack.identity.models import Domain, Project
from tinystack.identity.resource_common import policy_target, same_id

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService


@dataclass(frozen=True)
class ProjectFilter:
    """``GET /v3/projects``'s query: ``has_domain_id``/``has_parent_id`` say the parameter was given at all."""

    name: str | None = None
    domain_id: str | None = None
    parent_id: str | None = None
    enabled: bool | None = None
    is_domain: bool | None = None
    tags: Mapping[str, list[str]] = field(default_factory=dict)
    has_domain_id: bool = False
    has_parent_id: bool = False


@dataclass(frozen=True)
class ProjectTree:
    """A project with what its ``parents_as_*``/``subtree_as_*`` expansions show: its ancestors (nearest
    first, below the domain) and descendants, and the project ids the caller may see (None: all)."""

    project: Project
    parents: list[Project] = field(default_factory=list)
    subtree: list[Project] = field(default_factory=list)
    visible: set[str] | None = None


class Resources:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def _admin(self, ctx: RequestContext) -> bool:
        return self.svc.allowed(ctx, "admin_required")

    def _enforce_project(self, s: Session, ctx: RequestContext, rule: str, project_id: str) -> Project | None:
        project = s.get(Project, project_id)
        self.svc.enforce(ctx, rule, policy_target("project", project_id, project))
        return project

    # --- domains ---------------------------------------------------------------------------------

    async def create_domain(self, ctx: RequestContext, body: Mapping[str, Any]) -> Domain:
        self.svc.enforce(ctx, "identity:create_domain", {})
        return await self.svc.write(lambda s: resources.create_domain(s, body))

    def list_domains(self, ctx: RequestContext, *, name: str | None, enabled: bool | None) -> list[Domain]:
        self.svc.enforce(ctx, "identity:list_domains", policy_target("domain", ctx.domain_id) if ctx.domain_id else {})
        with self.svc.session() as s:
            return [d for d in resources.list_domains(s, name, enabled) if ctx.domain_id in (None, d.id)]

    def get_domain(self, ctx: RequestContext, domain_id: str) -> Domain:
        self.svc.enforce(ctx, "identity:get_domain", policy_target("domain", domain_id))
        with self.svc.session() as s:
            return resources.get_domain(s, domain_id)

    async def update_domain(self, ctx: RequestContext, domain_id: str, body: Mapping[str, Any]) -> Domain:
        self.svc.enforce(ctx, "identity:update_domain", policy_target("domain", domain_id))
        same_id(body, domain_id)
        return await self.svc.write(lambda s: resources.update_domain(s, self.svc.tokens, domain_id, body))

    async def delete_domain(self, ctx: RequestContext, domain_id: str) -> None:
        self.svc.enforce(ctx, "identity:delete_domain", policy_target("domain", domain_id))
        await self.svc.write(lambda s: resources.delete_domain(s, domain_id))

    # --- projects --------------------------------------------------------------------------------

    async def create_project(self, ctx: RequestContext, body: Mapping[str, Any]) -> Project | Domain:
        """A project, or with ``is_domain`` a domain (a root project acting as one)."""
        domain_id = body.get("domain_id") or ctx.domain_id or resources.DEFAULT_DOMAIN
        self.svc.enforce(ctx, "identity:create_project", {"target.project.domain_id": domain_id})

        def create(s: Session) -> Project | Domain:
            if not body.get("is_domain"):
                return resources.create_project(s, body, domain_id)
            if body.get("domain_id") or body.get("parent_id"):
                raise errors.BadRequest("only root projects are allowed to act as domains.")
            return resources.create_domain(s, {k: v for k, v in body.items()
                                               if k not in ("is_domain", "domain_id", "parent_id")})

        return await self.svc.write(create)

    def list_projects(self, ctx: RequestContext, f: ProjectFilter) -> list[Project] | list[Domain]:
        self.svc.enforce(ctx, "identity:list_projects", {"target.domain_id": f.domain_id or ctx.domain_id})
        with self.svc.session() as s:
            if f.is_domain:
                visible = None if self._admin(ctx) else set(roles.domains_with_roles(s, ctx.user_id))
                domains = [] if f.has_domain_id or f.has_parent_id else resources.list_domains(s, f.name, f.enabled)
                return [d for d in domains
                        if (visible is None or d.id in visible) and resources.tags_match(d.tags, f.tags)]
            # A domain-scoped caller that passed the policy lists its domain (filtered below).
            ids = None if self._admin(ctx) or ctx.domain_id else roles.projects_with_roles(s, ctx.user_id)
            found = resources.list_projects(s, name=f.name, domain_id=f.domain_id, enabled=f.enabled,
                                            parent_id=f.parent_id, ids=ids, tags=f.tags)
            return [p for p in found if ctx.domain_id in (None, p.domain_id)]

    def get_project(self, ctx: RequestContext, project_id: str, expand: bool = False) -> ProjectTree | Domain:
        """The project (with its parents and subtree when ``expand``), or the domain acting as it."""
        with self.svc.session() as s:
            project = self._enforce_project(s, ctx, "identity:get_project", project_id)
            if project is None:
                domain = s.get(Domain, project_id)
                if domain is None:
                    raise errors.NotFound(f"Could not find project: {project_id}.")
                return domain
            if not expand:
                return ProjectTree(project)
            visible = None if self._admin(ctx) else set(roles.projects_with_roles(s, ctx.user_id))
            return ProjectTree(project, roles.project_lineage(s, project.id)[1:], resources.subtree(s, project.id),
                               visible)

    async def update_project(self, ctx: RequestContext, project_id: str, body: Mapping[str, Any]) -> Project | Domain:
        def update(s: Session) -> Project | Domain:
            project = self._enforce_project(s, ctx, "identity:update_project", project_id)
            if project is None and s.get(Domain, project_id) is not None:
                return self._update_domain_project(s, project_id, body)
            return resources.update_project(s, self.svc.tokens, project_id, body)

        return await self.svc.write(update)

    def _update_domain_project(self, s: Session, domain_id: str, body: Mapping[str, Any]) -> Domain:
        if body.get("is_domain") is False:
            raise errors.BadRequest("Update of `is_domain` is not allowed.")
        if body.get("parent_id") is not None:
            raise errors.Forbidden("Update of `parent_id` is not allowed.")
        if body.get("domain_id") is not None:
            raise errors.BadRequest("Cannot change Domain ID")
        return resources.update_domain(s, self.svc.tokens, domain_id, body)

    async def delete_project(self, ctx: RequestContext, project_id: str) -> None:
        def delete(s: Session) -> None:
            project = self._enforce_project(s, ctx, "identity:delete_project", project_id)
            domain = s.get(Domain, project_id) if project is None else None
            if domain is None:
                resources.delete_project(s, self.svc.tokens, project_id)
            elif domain.enabled:
                raise errors.BadRequest(f"cannot delete an enabled project acting as a domain. "
                                        f"Please disable the project {project_id} first.")
            else:
                resources.delete_domain(s, project_id)

        await self.svc.write(delete)

    # --- project tags ----------------------------------------------------------------------------

    def _enforce_tags(self, ctx: RequestContext, rule: str, project_id: str) -> None:
        self.svc.enforce(ctx, rule, policy_target("project", project_id))

    def list_tags(self, ctx: RequestContext, project_id: str) -> list[str]:
        self._enforce_tags(ctx, "identity:list_project_tags", project_id)
        with self.svc.session() as s:
            return list(resources.get_project(s, project_id).tags)

    async def set_tags(self, ctx: RequestContext, project_id: str, tags: list[str]) -> list[str]:
        self._enforce_tags(ctx, "identity:update_project_tags", project_id)
        return await self.svc.write(lambda s: resources.set_tags(s, project_id, tags))

    async def clear_tags(self, ctx: RequestContext, project_id: str) -> None:
        self._enforce_tags(ctx, "identity:delete_project_tags", project_id)
        await self.svc.write(lambda s: resources.set_tags(s, project_id, []))

    def check_tag(self, ctx: RequestContext, project_id: str, tag: str) -> None:
        self._enforce_tags(ctx, "identity:get_project_tag", project_id)
        with self.svc.session() as s:
            resources.check_tag(s, project_id, tag)

    async def add_tag(self, ctx: RequestContext, project_id: str, tag: str) -> None:
        self._enforce_tags(ctx, "identity:create_project_tag", project_id)
        validate(tag, rs.TAG)

        def add(s: Session) -> None:
            validate([*resources.get_project(s, project_id).tags, tag], rs.TAG_LIST)
            resources.add_tag(s, project_id, tag)

        await self.svc.write(add)

    async def remove_tag(self, ctx: RequestContext, project_id: str, tag: str) -> None:
        self._enforce_tags(ctx, "identity:delete_project_tag", project_id)
        await self.svc.write(lambda s: resources.remove_tag(s, project_id, tag))
