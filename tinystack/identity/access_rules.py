"""The rules for application credential access rules: a user's rules are shared by the credentials that name
them, found again by their service, method and path, and deleted only when no credential uses them. Every
function takes an open Session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import AccessRule as ContextRule
from tinystack.core.db import new_id
from tinystack.identity.models import AccessRule, ApplicationCredential


def _not_found(rule_id: str) -> errors.NotFound:
    return errors.NotFound(f"Could not find access rule: {rule_id}.")


def get_rule(s: Session, user_id: str, rule_id: str) -> AccessRule:
    rule = s.get(AccessRule, rule_id)
    if rule is None or rule.user_id != user_id:
        raise _not_found(rule_id)
    return rule


def list_rules(s: Session, user_id: str, filters: Mapping[str, str | None] | None = None) -> list[AccessRule]:
    q = select(AccessRule).where(AccessRule.user_id == user_id)
    for key in ("service", "method", "path"):
        value = (filters or {}).get(key)
        if value is not None:
            q = q.where(getattr(AccessRule, key) == value)
    return list(s.scalars(q.order_by(AccessRule.service, AccessRule.path, AccessRule.method)))


def resolve(s: Session, user_id: str, specs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ids of the rules a new credential names: existing ones by id, others found or made by value."""
    out: list[str] = []
    for spec in specs:
        rule: AccessRule | None
        if "id" in spec and not {"service", "method", "path"} <= spec.keys():
            rule = get_rule(s, user_id, spec["id"])
        else:
            rule = s.scalar(select(AccessRule).where(
                AccessRule.user_id == user_id, AccessRule.service == spec["service"],
                AccessRule.method == spec["method"], AccessRule.path == spec["path"]))
            if rule is None:
                rule = AccessRule(id=new_id(), user_id=user_id, service=spec["service"], method=spec["method"],
                                  path=spec["path"])
                s.add(rule)
                s.flush()
        if rule.id not in out:
            out.append(rule.id)
    return out


def rules_of(s: Session, cred: ApplicationCredential) -> list[AccessRule]:
    if not cred.access_rule_ids:
        return []
    found = {r.id: r for r in s.scalars(select(AccessRule).where(AccessRule.id.in_(cred.access_rule_ids)))}
    return [found[i] for i in cred.access_rule_ids if i in found]


def for_context(s: Session, cred: ApplicationCredential) -> tuple[ContextRule, ...] | None:
    """What a token of ``cred`` carries for the services to enforce: None when it names no rules."""
    if not cred.access_rule_ids:
        return None
    return tuple(ContextRule(r.service, r.method, r.path) for r in rules_of(s, cred))


def delete_rule(s: Session, user_id: str, rule_id: str) -> None:
    rule = get_rule(s, user_id, rule_id)
    for ids in s.scalars(select(ApplicationCredential.access_rule_ids).where(ApplicationCredential.user_id == user_id)):
        if rule_id in (ids or []):
            raise errors.Forbidden(f"Cannot delete access rule {rule_id}: an application credential uses it.")
    s.delete(rule)
