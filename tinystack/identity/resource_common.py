"""What the rules for domains, projects, users and groups share (``resources.py``, ``users.py``): lookups,
policy targets, unknown attributes kept as ``extra``, resource options, list filters, and a flush that turns a
lost race into 409."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.identity.lookup import get_or_404
from tinystack.identity.models import Domain, Group, Project, User


def get_domain(s: Session, domain_id: str) -> Domain:
    return cast(Domain, get_or_404(s, Domain, domain_id, "domain"))


def get_project(s: Session, project_id: str) -> Project:
    return cast(Project, get_or_404(s, Project, project_id, "project"))


def get_user(s: Session, user_id: str) -> User:
    return cast(User, get_or_404(s, User, user_id, "user"))


def get_group(s: Session, group_id: str) -> Group:
    return cast(Group, get_or_404(s, Group, group_id, "group"))


def extra(body: Mapping[str, Any], fields: frozenset[str], current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Unknown attributes, kept like Keystone's ``extra``; ``id`` and ``links`` are never stored."""
    new = {k: v for k, v in body.items() if k not in fields and k not in ("id", "links")}
    return {**(current or {}), **new}


def merged_options(current: Mapping[str, Any], new: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(current)
    for key, value in (new or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def match(q: Select[Any], *pairs: tuple[Any, Any]) -> Select[Any]:
    """``q`` narrowed by ``column == value`` for every pair whose value is given."""
    for column, value in pairs:
        if value is not None:
            q = q.where(column.is_(value) if isinstance(value, bool) else column == value)
    return q


def flush(s: Session, conflict: str) -> None:
    """Flush now so a unique constraint lost to a concurrent writer is a 409, not a 500 at commit."""
    try:
        s.flush()
    except IntegrityError:
        raise errors.Conflict(conflict) from None


def policy_target(kind: str, ident: str, obj: Any = None) -> dict[str, Any]:
    """What a rule may inspect of the domain, project, user or group a request names (``target.user.id`` ...);
    only the id when it does not exist, so policy still decides before a 404 admits that."""
    out = {f"target.{kind}.id": ident}
    if obj is not None and getattr(obj, "domain_id", None):
        out[f"target.{kind}.domain_id"] = obj.domain_id
    return out


def same_id(body: Mapping[str, Any], ident: str) -> None:
    """A body may repeat the id in its path, never change it."""
    if body.get("id") is not None and body["id"] != ident:
        raise errors.BadRequest("Cannot change ID")
