"""Keystone's role-assignment listing (``GET /v3/role_assignments``): the stored grants matching the filters, or
with ``effective`` what reaches users (groups expanded, inheritance applied, implied roles added); and their names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.identity import roles
from tinystack.identity.lookup import get_or_404
from tinystack.identity.models import Assignment, Domain, Group, Membership, Project, Role, User

PROJECT_TYPES = ("UserProject", "GroupProject")
DOMAIN_TYPES = ("UserDomain", "GroupDomain")
SYSTEM_TYPES = ("UserSystem", "GroupSystem")
USER_TYPES = ("UserProject", "UserDomain", "UserSystem")
GROUP_TYPES = ("GroupProject", "GroupDomain", "GroupSystem")


@dataclass(frozen=True)
class Query:
    """``GET /v3/role_assignments`` filters; ``inherited`` None means both kinds."""

    role_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    inherited: bool | None = None
    effective: bool = False
    include_subtree: bool = False


@dataclass(frozen=True)
class Entry:
    """One listed assignment. ``via_*`` say where an effective entry came from (Keystone's ``indirect``)."""

    role_id: str
    user_id: str | None = None
    group_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    inherited: bool = False
    via_group: str | None = None
    via_project: str | None = None
    via_domain: str | None = None
    prior_role_id: str | None = None


def _entry(a: Assignment) -> Entry:
    user_id = a.actor_id if a.type in USER_TYPES else None
    group_id = None if user_id else a.actor_id
    if a.type in PROJECT_TYPES:
        return Entry(a.role_id, user_id, group_id, project_id=a.target_id, inherited=a.inherited)
    if a.type in DOMAIN_TYPES:
        return Entry(a.role_id, user_id, group_id, domain_id=a.target_id, inherited=a.inherited)
    return Entry(a.role_id, user_id, group_id, system=True)


def _rows(s: Session, types: Iterable[str], *where: Any) -> list[Assignment]:
    q = select(Assignment).where(Assignment.type.in_(tuple(types)), *where)
    return list(s.scalars(q.order_by(Assignment.type, Assignment.target_id, Assignment.actor_id, Assignment.role_id)))


def list_assignments(s: Session, q: Query) -> list[Entry]:
    subtree: list[str] = []
    if q.project_id and q.include_subtree:
        get_or_404(s, Project, q.project_id, "project")
        subtree = roles.descendant_ids(s, [q.project_id])
    if q.effective:
        return _effective(s, q, subtree)
    return _direct(s, q, subtree)


def _direct(s: Session, q: Query, subtree: list[str]) -> list[Entry]:
    """The stored assignments matching the filters, unexpanded."""
    where: list[Any] = []
    types = set(USER_TYPES if q.user_id else GROUP_TYPES if q.group_id else (*USER_TYPES, *GROUP_TYPES))
    if q.user_id or q.group_id:
        where.append(Assignment.actor_id == (q.user_id or q.group_id))
    if q.role_id:
        where.append(Assignment.role_id == q.role_id)
    rows: list[Assignment] = []
    if not q.system:
        scoped = list(where)
        kinds = types - set(SYSTEM_TYPES)
        if q.domain_id:
            kinds &= set(DOMAIN_TYPES)
            scoped.append(Assignment.target_id == q.domain_id)
        if q.project_id:
            kinds &= set(PROJECT_TYPES)
            scoped.append(Assignment.target_id.in_([q.project_id, *subtree]))
        if q.inherited is not None:
            scoped.append(Assignment.inherited.is_(q.inherited))
        rows += _rows(s, sorted(kinds), *scoped)
    if q.system or not (q.project_id or q.domain_id):
        # Keystone applies no inheritance filter to system assignments.
        rows += _rows(s, sorted(types & set(SYSTEM_TYPES)), *where)
    return [_entry(a) for a in rows]


def _for_actors(s: Session, q: Query, actors: list[str] | None, subtree: list[str],
                inherited: bool | None) -> list[Assignment]:
    """Project and domain assignments of ``actors`` (None: everyone) that can reach the filtered target."""
    base: list[Any] = [] if actors is None else [Assignment.actor_id.in_(actors)]
    out: list[Assignment] = []
    if inherited in (False, None):
        if q.domain_id:
            out += _rows(s, DOMAIN_TYPES, *base, Assignment.inherited.is_(False), Assignment.target_id == q.domain_id)
        elif q.project_id:
            out += _rows(s, PROJECT_TYPES, *base, Assignment.inherited.is_(False),
                         Assignment.target_id.in_([q.project_id, *subtree]))
        else:
            out += _rows(s, (*PROJECT_TYPES, *DOMAIN_TYPES), *base, Assignment.inherited.is_(False))
    if inherited in (True, None):
        if q.project_id:
            lineage = roles.project_lineage(s, q.project_id)
            if not lineage:
                raise errors.NotFound(f"Could not find project: {q.project_id}.")
            out += _rows(s, DOMAIN_TYPES, *base, Assignment.inherited.is_(True),
                         Assignment.target_id == lineage[0].domain_id)
            sources = [p.id for p in lineage[1:]] + ([q.project_id, *subtree] if subtree else [])
            if sources:
                out += _rows(s, PROJECT_TYPES, *base, Assignment.inherited.is_(True), Assignment.target_id.in_(sources))
        else:
            out += _rows(s, (*PROJECT_TYPES, *DOMAIN_TYPES), *base, Assignment.inherited.is_(True))
    return out


@dataclass
class _Expander:
    """Keystone's ``_expand_indirect_assignment``: groups become their members, inherited grants their projects."""

    s: Session
    q: Query
    subtree: list[str]
    members: dict[str, list[str]] = field(default_factory=dict)

    def users(self, group_id: str) -> list[str]:
        if self.q.user_id:
            return [self.q.user_id]
        if group_id not in self.members:
            self.members[group_id] = sorted(self.s.scalars(select(Membership.user_id)
                                                           .where(Membership.group_id == group_id)))
        return self.members[group_id]

    def projects(self, e: Entry) -> list[str]:
        if self.q.project_id:
            ids = [self.q.project_id]
            if self.subtree:
                ids += self.subtree
                # An inherited grant inside the subtree only reaches the part below it.
                if e.project_id and e.project_id in ids:
                    ids = roles.descendant_ids(self.s, [e.project_id])
            return ids
        if e.domain_id:
            return list(self.s.scalars(select(Project.id).where(Project.domain_id == e.domain_id).order_by(Project.id)))
        return roles.descendant_ids(self.s, [e.project_id or ""])

    def expand(self, e: Entry) -> list[Entry]:
        if e.inherited:
            via = {"via_project": e.project_id} if e.project_id else {"via_domain": e.domain_id}
            targets = [replace(e, project_id=p, domain_id=None, **via) for p in self.projects(e)]
        else:
            targets = [e]
        if e.group_id is None:
            return targets
        return [replace(t, user_id=u, group_id=None, via_group=e.group_id) for t in targets for u in self.users(e.group_id)]


def _with_implied(entries: list[Entry], edges: dict[str, list[str]]) -> list[Entry]:
    """Each entry, then one entry per role it implies (transitively), remembering the implying role."""
    out = list(entries)
    for e in entries:
        seen: set[tuple[str, str]] = set()
        stack = [e]
        while stack:
            current = stack.pop(0)
            for implied in edges.get(current.role_id, ()):
                if (current.role_id, implied) in seen:
                    continue
                seen.add((current.role_id, implied))
                derived = replace(current, role_id=implied, prior_role_id=current.role_id)
                out.append(derived)
                stack.append(derived)
    return out


def _effective(s: Session, q: Query, subtree: list[str]) -> list[Entry]:
    """What actually reaches users, as in a token: groups expanded, inheritance applied, implied roles added,
    domain-specific roles dropped. Group filters and inherited domain filters can only give nothing."""
    if q.group_id or (q.domain_id and q.inherited):
        return []
    if q.system:
        # Keystone ignores scope.system in effective mode; tinystack expands the system grants instead.
        base = [] if q.user_id is None else [Assignment.actor_id.in_([q.user_id, *roles.group_ids(s, q.user_id)])]
        refs = [_entry(a) for a in _rows(s, SYSTEM_TYPES, *base)]
    else:
        inherited = False if q.domain_id else q.inherited
        actors = [q.user_id] if q.user_id else None
        found = _for_actors(s, q, actors, subtree, inherited)
        if q.user_id:
            groups = roles.group_ids(s, q.user_id)
            if groups:
                found += _for_actors(s, q, groups, subtree, inherited)
        refs = [_entry(a) for a in found]
    expander = _Expander(s, q, subtree)
    expanded = _with_implied([x for e in refs for x in expander.expand(e)], roles.implied_edges(s))
    role_ids = {e.role_id for e in expanded}
    global_ids = set(s.scalars(select(Role.id).where(Role.id.in_(role_ids), Role.domain_id == ""))) if role_ids else set()
    return [e for e in expanded if e.role_id in global_ids and (q.role_id is None or e.role_id == q.role_id)]


# --- names ------------------------------------------------------------------------------------


@dataclass
class Names:
    """Names for ``include_names``: id -> (name, domain id); domain id -> name."""

    users: dict[str, tuple[str, str]]
    groups: dict[str, tuple[str, str]]
    projects: dict[str, tuple[str, str]]
    roles: dict[str, tuple[str, str]]
    domains: dict[str, str]


def names_for(s: Session, entries: list[Entry]) -> Names:
    def load(model: Any, ids: set[str]) -> dict[str, tuple[str, str]]:
        if not ids:
            return {}
        return {i: (n, d) for i, n, d in s.execute(select(model.id, model.name, model.domain_id).where(model.id.in_(ids)))}

    users = load(User, {e.user_id for e in entries if e.user_id})
    groups = load(Group, {e.group_id for e in entries if e.group_id})
    projects = load(Project, {e.project_id for e in entries if e.project_id})
    role_names = load(Role, {e.role_id for e in entries})
    domain_ids = {e.domain_id for e in entries if e.domain_id}
    for table in (users, groups, projects, role_names):
        domain_ids.update(d for _, d in table.values() if d)
    domains = {i: n for i, n in s.execute(select(Domain.id, Domain.name).where(Domain.id.in_(domain_ids)))}
    return Names(users, groups, projects, role_names, domains)
