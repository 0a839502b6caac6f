"""The rules of OS-TRUST: a trustor delegates some of its roles on a project to a trustee, for a while, for a
number of tokens, optionally letting the trustee act as the trustor (impersonation) or delegate further
(redelegation). Every function takes an open Session; the caller owns the transaction."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.db import new_id
from tinystack.identity import roles
from tinystack.identity.models import Project, Role, Trust, User
from tinystack.identity.resource_common import get_user
from tinystack.identity.timeutil import parse

_FIELDS = frozenset({"trustor_user_id", "trustee_user_id", "project_id", "impersonation", "expires_at",
                     "remaining_uses", "roles", "allow_redelegation", "redelegation_count", "id", "links"})


def not_found(trust_id: str) -> errors.NotFound:
    return errors.NotFound(f"Could not find trust: {trust_id}.")


def live(trust: Trust | None, now: float | None = None) -> bool:
    """Whether a trust exists and has not expired (Keystone hides expired trusts)."""
    return trust is not None and (trust.expires_at is None or trust.expires_at > (now or time.time()))


def get_trust(s: Session, trust_id: str) -> Trust:
    trust = s.get(Trust, trust_id)
    if not live(trust):
        raise not_found(trust_id)
    return cast(Trust, trust)


def list_trusts(s: Session, *, trustor: str | None, trustee: str | None) -> list[Trust]:
    q = select(Trust)
    if trustor is not None:
        q = q.where(Trust.trustor_user_id == trustor)
    if trustee is not None:
        q = q.where(Trust.trustee_user_id == trustee)
    now = time.time()
    return [t for t in s.scalars(q.order_by(Trust.id)) if live(t, now)]


def role_objects(s: Session, trust: Trust) -> list[Role]:
    """The roles the trust delegates, as named at creation (what ``/roles`` lists)."""
    if not trust.role_ids:
        return []
    found = {r.id: r for r in s.scalars(select(Role).where(Role.id.in_(trust.role_ids)))}
    return [found[i] for i in trust.role_ids if i in found]


def _resolve_roles(s: Session, specs: Sequence[Mapping[str, str]]) -> list[str]:
    out: list[str] = []
    for spec in specs:
        ref = spec.get("id") or spec["name"]
        role = s.get(Role, spec["id"]) if "id" in spec else None
        if role is None:
            # openstackclient sends a name as the id when its caller may not look roles up.
            role = s.scalar(select(Role).where(Role.name == ref, Role.domain_id == ""))
        if role is None:
            raise errors.NotFound(f"Could not find role: {ref}.")
        if role.id not in out:
            out.append(role.id)
    return out


def usable_role_ids(s: Session, trust: Trust) -> list[str]:
    """The role ids a token of this trust carries (the delegated roles and what they imply), or none when the
    delegation no longer holds: the trustor lost one of the roles, or a trust it was redelegated from is gone."""
    if trust.project_id is None or not trust.role_ids:
        return []
    if trust.redelegated_from is not None:
        parent = s.get(Trust, trust.redelegated_from)
        held = set(usable_role_ids(s, parent)) if parent is not None and live(parent) else set()
    else:
        held = set(roles.expand_implied(s, roles.direct_role_ids(s, trust.trustor_user_id, "project",
                                                                   trust.project_id)))
    if not set(trust.role_ids) <= held:
        return []
    return roles.expand_implied(s, trust.role_ids)


def create_trust(s: Session, body: Mapping[str, Any], parent: Trust | None, max_redelegation: int) -> Trust:
    """A new trust from the validated ``body``; ``parent`` is the trust of the caller's token, when the caller
    redelegates."""
    trustor_id, trustee_id = body["trustor_user_id"], body["trustee_user_id"]
    get_user(s, trustee_id)
    trustor = get_user(s, trustor_id)
    project_id = body.get("project_id")
    specs = body.get("roles") or []
    if project_id is not None and not specs:
        raise errors.BadRequest("At least one role should be specified.")
    if project_id is None and specs:
        raise errors.BadRequest("A trust with roles needs a project_id.")
    if project_id is not None and s.get(Project, project_id) is None:
        raise errors.NotFound(f"Could not find project: {project_id}.")
    role_ids = _resolve_roles(s, specs)
    expires_at = parse(body.get("expires_at"))
    if expires_at is not None and expires_at <= time.time():
        raise errors.BadRequest("The trust's expires_at must be in the future.")
    count = body.get("redelegation_count")
    allow = bool(body.get("allow_redelegation"))
    if parent is not None:
        _check_redelegation(parent, project_id, role_ids, expires_at, bool(body["impersonation"]), count)
        count = (parent.redelegation_count or 0) - 1 if count is None else count
        allow = allow and count > 0
        expires_at = parent.expires_at if expires_at is None else expires_at
    elif allow:
        if count is not None and count > max_redelegation:
            raise errors.Forbidden(f"Requested redelegation depth of {count} is greater than allowed "
                                   f"{max_redelegation}.")
        count = max_redelegation if count is None else count
    trust = Trust(id=new_id(), trustor_user_id=trustor.id, trustee_user_id=trustee_id, project_id=project_id,
                  impersonation=bool(body["impersonation"]), expires_at=expires_at,
                  remaining_uses=body.get("remaining_uses"), allow_redelegation=allow,
                  redelegation_count=count if allow else None,
                  redelegated_from=parent.id if parent is not None else None, role_ids=role_ids,
                  extra={k: v for k, v in body.items() if k not in _FIELDS})
    s.add(trust)
    if parent is None and not usable_role_ids(s, trust) and role_ids:
        s.expunge(trust)
        raise errors.Forbidden("The trustor does not hold every delegated role on the project.")
    s.flush()
    return trust


def _check_redelegation(parent: Trust, project_id: str | None, role_ids: list[str], expires_at: float | None,
                        impersonation: bool, count: int | None) -> None:
    if not parent.allow_redelegation or not parent.redelegation_count:
        raise errors.Forbidden("Redelegation is not allowed by the trust of this token.")
    if count is not None and count >= parent.redelegation_count:
        raise errors.Forbidden(f"Requested redelegation depth of {count} is greater than allowed "
                               f"{parent.redelegation_count - 1}.")
    if project_id != parent.project_id or not set(role_ids) <= set(parent.role_ids):
        raise errors.Forbidden("A redelegated trust may only narrow the project and roles of its trust.")
    if parent.expires_at is not None and expires_at is not None and expires_at > parent.expires_at:
        raise errors.Forbidden("A redelegated trust may not outlive its trust.")
    if impersonation and not parent.impersonation:
        raise errors.Forbidden("Impersonation is not allowed by the trust of this token.")


def delete_trust(s: Session, trust: Trust) -> None:
    """Delete the trust and every trust redelegated from it (their tokens die with them)."""
    children = list(s.scalars(select(Trust).where(Trust.redelegated_from == trust.id)))
    for child in children:
        delete_trust(s, child)
    s.delete(trust)


def consume(s: Session, trust_id: str, user_id: str) -> Trust:
    """The trust a token request of ``user_id`` scopes to, one use spent. Refusals are Keystone's."""
    trust = s.get(Trust, trust_id)
    if not live(trust):
        raise not_found(trust_id)
    assert trust is not None
    if trust.trustee_user_id != user_id:
        raise errors.Forbidden("User is not a trustee.")
    for uid in (trust.trustor_user_id, trust.trustee_user_id):
        user = s.get(User, uid)
        if user is None or not user.enabled:
            raise errors.Forbidden("The trustor or the trustee of this trust is disabled.")
    if trust.project_id is not None:
        project = s.get(Project, trust.project_id)
        if project is None or not project.enabled:
            raise errors.Unauthorized(f"Project {trust.project_id} is disabled.")
    if not usable_role_ids(s, trust):
        raise errors.Forbidden("The trustor no longer holds the roles this trust delegates.")
    if trust.remaining_uses is not None:
        # One conditional UPDATE: two concurrent requests cannot both spend the last use.
        spent = s.execute(update(Trust).where(Trust.id == trust_id, Trust.remaining_uses > 0)
                          .values(remaining_uses=Trust.remaining_uses - 1))
        if getattr(spent, "rowcount", 0) != 1:
            raise errors.Forbidden(f"No remaining uses for trust: {trust_id}.")
    return trust
