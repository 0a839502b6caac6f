"""Keystone's rules for domains and projects (with tags); users and groups are in ``users.py``. Functions over a
Session that raise tinystack.core.errors and never see HTTP. Token revocations are recorded only after every check
passed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.db import new_id
from tinystack.identity import roles
from tinystack.identity.models import ApplicationCredential as AppCred
from tinystack.identity.models import (
    Assignment,
    Credential,
    Domain,
    Group,
    ImpliedRole,
    Limit,
    Project,
    ProjectEndpoint,
    ProjectEndpointGroup,
    Role,
    Trust,
    User,
)
from tinystack.identity.resource_common import extra, flush, get_domain, get_project, get_user, match, merged_options
from tinystack.identity.tokens import TokenService
from tinystack.identity.users import purge_groups, purge_users

DEFAULT_DOMAIN = "default"
MAX_PROJECT_DEPTH = 5  # Keystone's max_project_tree_depth
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")

_DOMAIN_FIELDS = frozenset({"name", "description", "enabled", "tags", "options", "explicit_domain_id"})
_PROJECT_FIELDS = frozenset({"name", "description", "enabled", "tags", "options", "domain_id", "parent_id", "is_domain"})


def _project_conflict(name: str, project_id: str) -> str:
    return ("Conflict occurred attempting to store project - it is not permitted to have two projects with either "
            f"the same name or same id in the same domain: name is {name}, project id {project_id}.")


def _domain_conflict(name: str) -> str:
    return ("Conflict occurred attempting to store project - it is not permitted to have two projects acting as "
            f"domains with the same name: {name}.")


def _check_immutable(kind: str, ident: str, options: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
    """An immutable resource accepts exactly one change: clearing the ``immutable`` option."""
    if not options.get("immutable"):
        return
    new = changes.get("options") or {}
    if len(changes) > 1 or "immutable" not in new or new["immutable"] not in (False, None):
        raise errors.Forbidden(f'Unable to update immutable {kind} resource: `{ident}. '
                               'Set resource option "immutable" to false first.')


def _domain_options(options: Mapping[str, Any] | None) -> None:
    # The domain table has no options column; refusing beats silently dropping the option.
    if options and options.get("immutable"):
        raise errors.NotImplementedYet("The immutable option is not supported on domains.")


# --- domains -------------------------------------------------------------------------------------


def create_domain(s: Session, body: Mapping[str, Any]) -> Domain:
    name = body["name"].strip()
    domain_id = body.get("explicit_domain_id")
    if domain_id is not None:
        try:
            valid = uuid.UUID(domain_id).hex == domain_id
        except ValueError:
            valid = False
        if not valid:
            raise errors.BadRequest("Domain ID does not conform to required UUID format.")
    domain_id = domain_id or new_id()
    _domain_options(body.get("options"))
    taken = s.get(Domain, domain_id) is not None or s.scalar(select(Domain.id).where(Domain.name == name))
    if taken:
        raise errors.Conflict(_domain_conflict(name))
    domain = Domain(id=domain_id, name=name, description=body.get("description") or "",
                    enabled=body.get("enabled", True), tags=list(body.get("tags", [])),
                    extra=extra(body, _DOMAIN_FIELDS))
    s.add(domain)
    flush(s, _domain_conflict(name))
    return domain


def update_domain(s: Session, tokens: TokenService, domain_id: str, body: Mapping[str, Any]) -> Domain:
    domain = get_domain(s, domain_id)
    _domain_options(body.get("options"))
    if "name" in body:
        name = body["name"].strip()
        if s.scalar(select(Domain.id).where(Domain.name == name, Domain.id != domain.id)):
            raise errors.Conflict(_domain_conflict(name))
        domain.name = name
    if "description" in body:
        domain.description = body["description"] or ""
    if "tags" in body:
        domain.tags = list(body["tags"])
    disabling = domain.enabled and body.get("enabled") is False
    if "enabled" in body:
        domain.enabled = body["enabled"]
    domain.extra = extra(body, _DOMAIN_FIELDS | {"domain_id", "parent_id", "is_domain"}, domain.extra)
    flush(s, _domain_conflict(domain.name))
    if disabling:
        tokens.revoke(s, domain_id=domain.id)
    return domain


def delete_domain(s: Session, domain_id: str) -> None:
    """Delete a disabled domain with its projects, users, groups, domain roles and assignments on it."""
    domain = get_domain(s, domain_id)
    if domain.enabled:
        raise errors.Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    _purge_projects(s, list(s.scalars(select(Project.id).where(Project.domain_id == domain_id))))
    purge_users(s, list(s.scalars(select(User.id).where(User.domain_id == domain_id))))
    purge_groups(s, list(s.scalars(select(Group.id).where(Group.domain_id == domain_id))))
    role_ids = list(s.scalars(select(Role.id).where(Role.domain_id == domain_id)))
    if role_ids:
        s.execute(delete(Assignment).where(Assignment.role_id.in_(role_ids)))
        s.execute(delete(ImpliedRole).where(or_(ImpliedRole.prior_role_id.in_(role_ids),
                                                ImpliedRole.implied_role_id.in_(role_ids))))
        s.execute(delete(Role).where(Role.id.in_(role_ids)))
    s.execute(delete(Assignment).where(Assignment.target_id == domain_id,
                                       Assignment.type.in_(("UserDomain", "GroupDomain"))))
    s.execute(delete(Domain).where(Domain.id == domain_id))


def list_domains(s: Session, name: str | None = None, enabled: bool | None = None) -> list[Domain]:
    q = match(select(Domain), (Domain.name, name), (Domain.enabled, enabled))
    return list(s.scalars(q.order_by(Domain.name, Domain.id)))


# --- projects ------------------------------------------------------------------------------------


def create_project(s: Session, body: Mapping[str, Any], default_domain: str) -> Project:
    name = body["name"].strip()
    domain_id = body.get("domain_id") or default_domain
    parent_id = body.get("parent_id") or domain_id
    domain = s.get(Domain, domain_id)
    if domain is None:
        raise errors.BadRequest(f"Could not find domain: {domain_id}.")
    parent = None
    if parent_id != domain_id:
        parent = s.get(Project, parent_id)
        if parent is None and s.get(Domain, parent_id) is not None:
            raise errors.BadRequest(f"Cannot create project, the parent ({parent_id}) is acting as a domain, but this "
                                    f"project's domain id ({domain_id}) does not match the parent's id.")
        if parent is None:
            raise errors.BadRequest(f"Could not find project: {parent_id}.")
        if parent.domain_id != domain_id:
            raise errors.BadRequest(f"Cannot create project, since it specifies its domain_id {domain_id}, but "
                                    f"specifies a parent in a different domain ({parent.domain_id}).")
    lineage = roles.project_lineage(s, parent.id) if parent is not None else []
    branch: list[Project | Domain] = [*lineage, domain]
    for ref in branch:
        if not ref.enabled:
            raise errors.BadRequest(f"cannot create a project in a branch containing a disabled project: {ref.id}")
    if len(lineage) >= MAX_PROJECT_DEPTH:
        raise errors.Forbidden(f"Max hierarchy depth reached for {parent_id} branch.")
    project_id = new_id()
    if s.scalar(select(Project.id).where(Project.domain_id == domain_id, Project.name == name)):
        raise errors.Conflict(_project_conflict(name, project_id))
    project = Project(id=project_id, name=name, domain_id=domain_id, parent_id=parent.id if parent else None,
                      description=body.get("description") or "", enabled=body.get("enabled", True),
                      tags=list(body.get("tags", [])), options=merged_options({}, body.get("options")),
                      extra=extra(body, _PROJECT_FIELDS))
    s.add(project)
    flush(s, _project_conflict(name, project_id))
    return project


def update_project(s: Session, tokens: TokenService, project_id: str, body: Mapping[str, Any]) -> Project:
    project = get_project(s, project_id)
    _check_immutable("project", project.id, project.options, body)
    if "domain_id" in body and body["domain_id"] != project.domain_id:
        raise errors.BadRequest("Cannot change Domain ID")
    if "parent_id" in body and body["parent_id"] != (project.parent_id or project.domain_id):
        raise errors.Forbidden("Update of `parent_id` is not allowed.")
    if body.get("is_domain"):
        raise errors.BadRequest("Update of `is_domain` is not allowed.")
    enabled = body.get("enabled", project.enabled)
    if enabled and not project.enabled:
        ancestors: list[Project | Domain] = [*roles.project_lineage(s, project.id)[1:], get_domain(s, project.domain_id)]
        if not all(ref.enabled for ref in ancestors):
            raise errors.Forbidden(f"Cannot enable project {project.id} since it has disabled parents")
    disabling = project.enabled and not enabled
    if disabling and any(child.enabled for child in subtree(s, project.id)):
        raise errors.Forbidden(f"Cannot disable project {project.id} since its subtree contains enabled projects.")
    if "name" in body:
        name = body["name"].strip()
        if s.scalar(select(Project.id).where(Project.domain_id == project.domain_id, Project.name == name,
                                             Project.id != project.id)):
            raise errors.Conflict(_project_conflict(name, project.id))
        project.name = name
    if "description" in body:
        project.description = body["description"] or ""
    if "tags" in body:
        project.tags = list(body["tags"])
    if "options" in body:
        project.options = merged_options(project.options, body["options"])
    project.enabled = enabled
    project.extra = extra(body, _PROJECT_FIELDS, project.extra)
    flush(s, _project_conflict(project.name, project.id))
    if disabling:
        tokens.revoke(s, project_id=project.id)
    return project


def delete_project(s: Session, tokens: TokenService, project_id: str) -> None:
    project = get_project(s, project_id)
    if project.options.get("immutable"):
        raise errors.Forbidden(f'Unable to delete immutable project resource: `{project.id}. '
                               'Set resource option "immutable" to false first.')
    if s.scalar(select(Project.id).where(Project.parent_id == project.id).limit(1)):
        raise errors.Forbidden(f"Cannot delete the project {project.id} since it is not a leaf in the hierarchy. "
                               "Use the cascade option if you want to delete a whole subtree.")
    _purge_projects(s, [project.id])
    tokens.revoke(s, project_id=project.id)


def subtree(s: Session, project_id: str) -> list[Project]:
    """Every descendant of the project, nearest generation first."""
    out: list[Project] = []
    frontier = [project_id]
    while frontier:
        children = list(s.scalars(select(Project).where(Project.parent_id.in_(frontier))))
        out.extend(children)
        frontier = [c.id for c in children]
    return out


def list_projects(s: Session, *, name: str | None = None, domain_id: str | None = None, enabled: bool | None = None,
                  parent_id: str | None = None, ids: Iterable[str] | None = None,
                  tags: Mapping[str, list[str]] | None = None) -> list[Project]:
    """Projects matching every given filter; ``parent_id`` may name a domain (its top-level projects)."""
    q = match(select(Project), (Project.name, name), (Project.domain_id, domain_id), (Project.enabled, enabled))
    if parent_id is not None:
        q = q.where(or_(Project.parent_id == parent_id, Project.parent_id.is_(None) & (Project.domain_id == parent_id)))
    if ids is not None:
        q = q.where(Project.id.in_(list(ids)))
    found = s.scalars(q.order_by(Project.name, Project.id))
    return [p for p in found if tags_match(p.tags, tags or {})]


def tags_match(tags: Iterable[str], filters: Mapping[str, list[str]]) -> bool:
    have = set(tags)
    every, any_of = set(filters.get("tags") or ()), set(filters.get("tags-any") or ())
    not_every, not_any = set(filters.get("not-tags") or ()), set(filters.get("not-tags-any") or ())
    return ((not every or every <= have) and (not any_of or bool(any_of & have))
            and (not not_every or not not_every <= have) and not (not_any & have))


def _mutable_tags(project: Project) -> None:
    if project.options.get("immutable"):
        raise errors.Forbidden(f"Cannot update project tags for {project.id}, project is immutable. "
                               'Set "immutable" option to false before creating project tags.')


def set_tags(s: Session, project_id: str, tags: Iterable[str]) -> list[str]:
    project = get_project(s, project_id)
    _mutable_tags(project)
    project.tags = [t.strip() for t in tags]
    return list(project.tags)


def add_tag(s: Session, project_id: str, tag: str) -> None:
    project = get_project(s, project_id)
    _mutable_tags(project)
    project.tags = [*project.tags, tag.strip()]


def check_tag(s: Session, project_id: str, tag: str) -> None:
    if tag not in get_project(s, project_id).tags:
        raise errors.NotFound(f"Could not find project tag: {tag}.")


def remove_tag(s: Session, project_id: str, tag: str) -> None:
    project = get_project(s, project_id)
    _mutable_tags(project)
    if tag not in project.tags:
        raise errors.NotFound(f"Could not find project tag: {tag}.")
    project.tags = [t for t in project.tags if t != tag]


def _purge_projects(s: Session, ids: list[str]) -> None:
    if not ids:
        return
    s.execute(delete(Assignment).where(Assignment.target_id.in_(ids),
                                       Assignment.type.in_(("UserProject", "GroupProject"))))
    s.execute(delete(AppCred).where(AppCred.project_id.in_(ids)))
    s.execute(delete(Credential).where(Credential.project_id.in_(ids)))
    s.execute(delete(Limit).where(Limit.project_id.in_(ids)))
    s.execute(delete(ProjectEndpoint).where(ProjectEndpoint.project_id.in_(ids)))
    s.execute(delete(ProjectEndpointGroup).where(ProjectEndpointGroup.project_id.in_(ids)))
    s.execute(delete(Trust).where(Trust.project_id.in_(ids)))
    s.execute(delete(Project).where(Project.id.in_(ids)))


def user_projects(s: Session, user_id: str, **filters: Any) -> list[Project]:
    """Projects where the user has a role: directly, through a group, or inherited."""
    get_user(s, user_id)
    return list_projects(s, ids=roles.projects_with_roles(s, user_id), **filters)
