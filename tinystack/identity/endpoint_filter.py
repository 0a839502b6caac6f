"""The rules of OS-EP-FILTER: endpoint groups (endpoints matching filters), endpoints and groups given to
projects, and the endpoints a project's catalog shows (all of them while the project has no filter). Every
function takes an open Session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.db import new_id
from tinystack.identity.lookup import get_or_404
from tinystack.identity.models import Endpoint, EndpointGroup, Project, ProjectEndpoint, ProjectEndpointGroup

FILTER_KEYS = ("interface", "service_id", "region_id")


def get_group(s: Session, group_id: str) -> EndpointGroup:
    return cast(EndpointGroup, get_or_404(s, EndpointGroup, group_id, "endpoint group"))


def list_groups(s: Session, name: str | None = None) -> list[EndpointGroup]:
    q = select(EndpointGroup)
    if name is not None:
        q = q.where(EndpointGroup.name == name)
    return list(s.scalars(q.order_by(EndpointGroup.name, EndpointGroup.id)))


def create_group(s: Session, body: Mapping[str, Any]) -> EndpointGroup:
    group = EndpointGroup(id=new_id(), name=body["name"], description=body.get("description"),
                          filters=dict(body["filters"]))
    s.add(group)
    s.flush()
    return group


def update_group(s: Session, group_id: str, body: Mapping[str, Any]) -> EndpointGroup:
    group = get_group(s, group_id)
    for key in ("name", "description"):
        if key in body:
            setattr(group, key, body[key])
    if "filters" in body:
        group.filters = dict(body["filters"])
    return group


def delete_group(s: Session, group_id: str) -> None:
    group = get_group(s, group_id)
    s.execute(delete(ProjectEndpointGroup).where(ProjectEndpointGroup.group_id == group_id))
    s.delete(group)


def group_endpoints(s: Session, group: EndpointGroup) -> list[Endpoint]:
    q = select(Endpoint)
    for key in FILTER_KEYS:
        if key in group.filters:
            q = q.where(getattr(Endpoint, key) == group.filters[key])
    return list(s.scalars(q.order_by(Endpoint.id)))


def _project(s: Session, project_id: str) -> Project:
    return cast(Project, get_or_404(s, Project, project_id, "project"))


def _endpoint(s: Session, endpoint_id: str) -> Endpoint:
    return cast(Endpoint, get_or_404(s, Endpoint, endpoint_id, "endpoint"))


# --- projects and endpoint groups -----------------------------------------------------------------


def group_projects(s: Session, group_id: str) -> list[Project]:
    get_group(s, group_id)
    ids = s.scalars(select(ProjectEndpointGroup.project_id).where(ProjectEndpointGroup.group_id == group_id))
    return list(s.scalars(select(Project).where(Project.id.in_(list(ids))).order_by(Project.name)))


def project_groups(s: Session, project_id: str) -> list[EndpointGroup]:
    _project(s, project_id)
    ids = s.scalars(select(ProjectEndpointGroup.group_id).where(ProjectEndpointGroup.project_id == project_id))
    return list(s.scalars(select(EndpointGroup).where(EndpointGroup.id.in_(list(ids))).order_by(EndpointGroup.name)))


def _group_link(s: Session, group_id: str, project_id: str) -> ProjectEndpointGroup | None:
    get_group(s, group_id)
    _project(s, project_id)
    return s.get(ProjectEndpointGroup, (project_id, group_id))


def check_group_project(s: Session, group_id: str, project_id: str) -> None:
    if _group_link(s, group_id, project_id) is None:
        raise errors.NotFound(f"Could not find endpoint group {group_id} for project {project_id}.")


def add_group_project(s: Session, group_id: str, project_id: str) -> None:
    if _group_link(s, group_id, project_id) is None:
        s.add(ProjectEndpointGroup(project_id=project_id, group_id=group_id))


def remove_group_project(s: Session, group_id: str, project_id: str) -> None:
    link = _group_link(s, group_id, project_id)
    if link is None:
        raise errors.NotFound(f"Could not find endpoint group {group_id} for project {project_id}.")
    s.delete(link)


# --- projects and endpoints ----------------------------------------------------------------------


def _endpoint_link(s: Session, project_id: str, endpoint_id: str) -> ProjectEndpoint | None:
    _project(s, project_id)
    _endpoint(s, endpoint_id)
    return s.get(ProjectEndpoint, (project_id, endpoint_id))


def check_project_endpoint(s: Session, project_id: str, endpoint_id: str) -> None:
    if _endpoint_link(s, project_id, endpoint_id) is None:
        raise errors.NotFound(f"Could not find endpoint {endpoint_id} for project {project_id}.")


def add_project_endpoint(s: Session, project_id: str, endpoint_id: str) -> None:
    if _endpoint_link(s, project_id, endpoint_id) is None:
        s.add(ProjectEndpoint(project_id=project_id, endpoint_id=endpoint_id))


def remove_project_endpoint(s: Session, project_id: str, endpoint_id: str) -> None:
    link = _endpoint_link(s, project_id, endpoint_id)
    if link is None:
        raise errors.NotFound(f"Could not find endpoint {endpoint_id} for project {project_id}.")
    s.delete(link)


def endpoint_projects(s: Session, endpoint_id: str) -> list[Project]:
    _endpoint(s, endpoint_id)
    ids = s.scalars(select(ProjectEndpoint.project_id).where(ProjectEndpoint.endpoint_id == endpoint_id))
    return list(s.scalars(select(Project).where(Project.id.in_(list(ids))).order_by(Project.name)))


def project_endpoints(s: Session, project_id: str) -> list[Endpoint]:
    """The endpoints given to the project, directly or through its groups."""
    _project(s, project_id)
    allowed = allowed_endpoint_ids(s, project_id) or set()
    return list(s.scalars(select(Endpoint).where(Endpoint.id.in_(allowed)).order_by(Endpoint.id))) if allowed else []


def allowed_endpoint_ids(s: Session, project_id: str) -> set[str] | None:
    """The endpoints the project's catalog shows; None when the project has no filter (it sees them all)."""
    out = set(s.scalars(select(ProjectEndpoint.endpoint_id).where(ProjectEndpoint.project_id == project_id)))
    group_ids = list(s.scalars(select(ProjectEndpointGroup.group_id).where(
        ProjectEndpointGroup.project_id == project_id)))
    if not out and not group_ids:
        return None
    for group in s.scalars(select(EndpointGroup).where(EndpointGroup.id.in_(group_ids))):
        out.update(ep.id for ep in group_endpoints(s, group))
    return out
