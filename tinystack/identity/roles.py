"""Roles, implied roles, role assignments, and the effective roles a token carries."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.identity.models import Assignment, ImpliedRole, Membership, Project, Role

SYSTEM = "system"  # target_id of system assignments


def group_ids(s: Session, user_id: str) -> list[str]:
    return list(s.scalars(select(Membership.group_id).where(Membership.user_id == user_id)))


def project_lineage(s: Session, project_id: str) -> list[Project]:
    """The project and its ancestors, nearest first."""
    out: list[Project] = []
    current = s.get(Project, project_id)
    while current is not None and len(out) < 64:
        out.append(current)
        current = s.get(Project, current.parent_id) if current.parent_id else None
    return out


def descendant_ids(s: Session, project_ids: Iterable[str]) -> list[str]:
    """Every project below the given ones (not the given ones themselves), nearest first."""
    out: dict[str, None] = {}
    frontier = set(project_ids)
    while frontier:
        children = set(s.scalars(select(Project.id).where(Project.parent_id.in_(frontier)))) - out.keys()
        out.update(dict.fromkeys(sorted(children)))
        frontier = children
    return list(out)


def implied_edges(s: Session) -> dict[str, list[str]]:
    """prior role id -> the role ids it directly implies."""
    edges: dict[str, list[str]] = {}
    for prior, implied in s.execute(select(ImpliedRole.prior_role_id, ImpliedRole.implied_role_id)
                                    .order_by(ImpliedRole.prior_role_id, ImpliedRole.implied_role_id)):
        edges.setdefault(prior, []).append(implied)
    return edges


def expand_implied(s: Session, role_ids: Iterable[str]) -> list[str]:
    """Role ids plus everything they imply, transitively, in a stable order."""
    edges = implied_edges(s)
    seen: dict[str, None] = {}
    stack = list(role_ids)
    while stack:
        rid = stack.pop(0)
        if rid in seen:
            continue
        seen[rid] = None
        stack.extend(edges.get(rid, ()))
    return list(seen)


def direct_role_ids(s: Session, user_id: str, scope_type: str, scope_id: str | None) -> list[str]:
    """Roles granted on the scope to the user or its groups, with inheritance from domain and parents."""
    actors = [user_id, *group_ids(s, user_id)]
    q = select(Assignment.role_id).where(Assignment.actor_id.in_(actors))
    if scope_type == "system":
        q = q.where(Assignment.target_id == SYSTEM, Assignment.type.in_(("UserSystem", "GroupSystem")))
    elif scope_type == "domain":
        q = q.where(Assignment.target_id == scope_id, Assignment.type.in_(("UserDomain", "GroupDomain")),
                    Assignment.inherited.is_(False))
    elif scope_type == "project" and scope_id is not None:
        lineage = project_lineage(s, scope_id)
        if not lineage:
            return []
        direct = (Assignment.target_id == scope_id) & Assignment.inherited.is_(False)
        # As in Keystone, a project's own inherited assignments apply to its subtree, not to itself.
        inherited_targets = [p.id for p in lineage[1:]] + [lineage[0].domain_id]
        inherited = Assignment.target_id.in_(inherited_targets) & Assignment.inherited.is_(True)
        q = q.where(direct | inherited, Assignment.type.in_(("UserProject", "GroupProject", "UserDomain", "GroupDomain")))
    else:
        return []
    return list(dict.fromkeys(s.scalars(q)))


def effective_roles(s: Session, user_id: str, scope_type: str, scope_id: str | None) -> list[Role]:
    """The roles a token carries. Domain-specific roles only serve to imply others, so they are left out."""
    ids = expand_implied(s, direct_role_ids(s, user_id, scope_type, scope_id))
    if not ids:
        return []
    roles = {r.id: r for r in s.scalars(select(Role).where(Role.id.in_(ids)))}
    return [roles[i] for i in ids if i in roles and not roles[i].domain_id]


def projects_with_roles(s: Session, user_id: str) -> list[str]:
    """Ids of every project where the user has some role, directly, by group, or inherited."""
    actors = [user_id, *group_ids(s, user_id)]
    rows = s.execute(select(Assignment.type, Assignment.target_id, Assignment.inherited)
                     .where(Assignment.actor_id.in_(actors))).all()
    direct = {t for kind, t, inh in rows if kind in ("UserProject", "GroupProject") and not inh}
    inherit_from_projects = {t for kind, t, inh in rows if kind in ("UserProject", "GroupProject") and inh}
    inherit_from_domains = {t for kind, t, inh in rows if kind in ("UserDomain", "GroupDomain") and inh}
    result = set(direct)
    if inherit_from_domains:
        result.update(s.scalars(select(Project.id).where(Project.domain_id.in_(inherit_from_domains))))
    if inherit_from_projects:
        result.update(descendant_ids(s, inherit_from_projects))
    return sorted(result)


def domains_with_roles(s: Session, user_id: str) -> list[str]:
    actors = [user_id, *group_ids(s, user_id)]
    q = select(Assignment.target_id).where(Assignment.actor_id.in_(actors),
                                           Assignment.type.in_(("UserDomain", "GroupDomain")),
                                           Assignment.inherited.is_(False))
    return sorted(set(s.scalars(q)))


def has_system_roles(s: Session, user_id: str) -> bool:
    return bool(direct_role_ids(s, user_id, "system", None))
