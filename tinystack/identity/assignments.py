"""The rules for roles, implied roles and grants; the role-assignment listing is in ``assignment_listing.py``.
Every function takes an open Session; the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.db import new_id
from tinystack.identity import roles
from tinystack.identity.models import Assignment, Domain, Group, ImpliedRole, Membership, Project, Role, User
from tinystack.identity.tokens import TokenService

# Keystone's [assignment] prohibited_implied_role default.
PROHIBITED_IMPLIED = ("admin",)
ROLE_COLUMNS = ("name", "description", "domain_id", "options")


def _flush(s: Session, conflict: str) -> None:
    """Flush; a concurrent writer that won a uniqueness race becomes the same 409 the checks give."""
    try:
        s.flush()
    except IntegrityError:
        raise errors.Conflict(conflict) from None


def _get(s: Session, model: type, ident: str, kind: str) -> Any:
    obj = s.get(model, ident)
    if obj is None:
        raise errors.NotFound(f"Could not find {kind}: {ident}.")
    return obj


# --- roles -------------------------------------------------------------------------------------


def get_role(s: Session, role_id: str) -> Role:
    role: Role = _get(s, Role, role_id, "role")
    return role


def list_roles(s: Session, name: str | None = None, domain_id: str | None = None) -> list[Role]:
    """Global roles, or the roles of one domain when ``domain_id`` is given (Keystone never mixes them)."""
    q = select(Role).where(Role.domain_id == (domain_id or ""))
    if name is not None:
        q = q.where(Role.name == name)
    return list(s.scalars(q.order_by(Role.name, Role.id)))


def _ensure_unique(s: Session, name: str, domain_id: str, role_id: str | None = None) -> None:
    q = select(Role.id).where(Role.name == name, Role.domain_id == domain_id)
    if role_id is not None:
        q = q.where(Role.id != role_id)
    if s.scalar(q) is not None:
        where = f" at domain ID {domain_id}" if domain_id else ""
        raise errors.Conflict(f"Conflict occurred attempting to store role - Duplicate entry found with name {name}{where}.")


def _merge_options(current: dict[str, Any], update: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(current)
    for key, value in (update or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _extra(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in (*ROLE_COLUMNS, "id", "links")}


def create_role(s: Session, body: dict[str, Any]) -> Role:
    domain_id = body.get("domain_id") or ""
    if domain_id:
        _get(s, Domain, domain_id, "domain")
    _ensure_unique(s, body["name"], domain_id)
    role = Role(id=new_id(), name=body["name"], domain_id=domain_id, description=body.get("description") or "",
                options=_merge_options({}, body.get("options")), extra=_extra(body))
    s.add(role)
    _flush(s, f"Conflict occurred attempting to store role - Duplicate entry found with name {role.name}.")
    return role


def _immutable_message(action: str, role_id: str) -> str:
    return f'Unable to {action} immutable role resource: `{role_id}. Set resource option "immutable" to false first.'


def update_role(s: Session, role_id: str, body: dict[str, Any]) -> Role:
    role = get_role(s, role_id)
    if "id" in body and body["id"] != role_id:
        raise errors.BadRequest("Cannot change ID")
    if role.options.get("immutable"):
        # Keystone's rule: an immutable role only accepts the update that makes it mutable again.
        opts = body.get("options") or {}
        if len(body) > 1 or "immutable" not in opts or opts["immutable"] not in (False, None):
            raise errors.Forbidden(_immutable_message("update", role_id))
    if "domain_id" in body and (body["domain_id"] or "") != role.domain_id:
        raise errors.BadRequest("Update of `domain_id` is not allowed.")
    if "name" in body and body["name"] != role.name:
        _ensure_unique(s, body["name"], role.domain_id, role_id)
        role.name = body["name"]
    if "description" in body:
        role.description = body["description"] or ""
    if "options" in body:
        role.options = _merge_options(role.options, body["options"])
    extra = _extra(body)
    if extra:
        role.extra = {**role.extra, **extra}
    _flush(s, f"Conflict occurred attempting to store role - Duplicate entry found with name {role.name}.")
    return role


def delete_role(s: Session, role_id: str) -> None:
    """Delete a role with its assignments and implications; tokens lose it at their next validation."""
    role = get_role(s, role_id)
    if role.options.get("immutable"):
        raise errors.Forbidden(_immutable_message("delete", role_id))
    s.execute(delete(Assignment).where(Assignment.role_id == role_id))
    s.execute(delete(ImpliedRole).where(or_(ImpliedRole.prior_role_id == role_id,
                                            ImpliedRole.implied_role_id == role_id)))
    s.delete(role)
    s.flush()


# --- implied roles -----------------------------------------------------------------------------


def add_implied(s: Session, prior_id: str, implied_id: str) -> tuple[Role, Role]:
    """``prior`` implies ``implied``. Cycles are allowed, as in Keystone: every expansion stops at them."""
    implied = get_role(s, implied_id)
    prior = get_role(s, prior_id)
    if implied.name in PROHIBITED_IMPLIED:
        raise errors.Forbidden(f"{implied_id} cannot be an implied roles.")
    if not prior.domain_id and implied.domain_id:
        raise errors.Forbidden("Global role cannot imply a domain-specific role")
    if s.get(ImpliedRole, (prior_id, implied_id)) is not None:
        raise errors.Conflict("Conflict occurred attempting to store implied_role - Duplicate entry.")
    s.add(ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
    _flush(s, "Conflict occurred attempting to store implied_role - Duplicate entry.")
    return prior, implied


def get_implied(s: Session, prior_id: str, implied_id: str) -> tuple[Role, Role]:
    prior = get_role(s, prior_id)
    implied = get_role(s, implied_id)
    if s.get(ImpliedRole, (prior_id, implied_id)) is None:
        raise errors.NotFound(f"{prior_id} does not imply {implied_id}.")
    return prior, implied


def remove_implied(s: Session, prior_id: str, implied_id: str) -> None:
    get_implied(s, prior_id, implied_id)
    s.execute(delete(ImpliedRole).where(ImpliedRole.prior_role_id == prior_id,
                                        ImpliedRole.implied_role_id == implied_id))


def implied_by(s: Session, prior_id: str) -> tuple[Role, list[Role]]:
    """A role and the roles it directly implies."""
    prior = get_role(s, prior_id)
    q = (select(Role).join(ImpliedRole, ImpliedRole.implied_role_id == Role.id)
         .where(ImpliedRole.prior_role_id == prior_id).order_by(Role.name, Role.id))
    return prior, list(s.scalars(q))


def inference_rules(s: Session) -> list[tuple[Role, list[Role]]]:
    """Every prior role with the roles it directly implies."""
    edges = roles.implied_edges(s)
    ids = set(edges) | {i for implied in edges.values() for i in implied}
    by_id = {r.id: r for r in s.scalars(select(Role).where(Role.id.in_(ids)))} if ids else {}
    return [(by_id[p], [by_id[i] for i in implied]) for p, implied in edges.items()]


# --- grants ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """Where a role is granted: an actor (``user`` or ``group``) on a target (``project``, ``domain``, ``system``)."""

    actor: str
    actor_id: str
    kind: str
    target_id: str = roles.SYSTEM
    inherited: bool = False

    @property
    def type(self) -> str:
        return self.actor.capitalize() + self.kind.capitalize()

    def key(self, role_id: str) -> tuple[str, str, str, str, bool]:
        return (self.type, self.actor_id, self.target_id, role_id, self.inherited)


def _target(s: Session, g: Grant) -> Project | Domain | None:
    if g.kind == "system":
        return None
    target: Project | Domain = _get(s, Project if g.kind == "project" else Domain, g.target_id, g.kind)
    return target


def _actor(s: Session, g: Grant) -> None:
    _get(s, User if g.actor == "user" else Group, g.actor_id, g.actor)


def _not_found(g: Grant, role_id: str) -> errors.NotFound:
    return errors.NotFound(f"Could not find role assignment with role: {role_id}, user or group: {g.actor_id}, "
                           f"project, domain, or system: {g.target_id}.")


def add_grant(s: Session, g: Grant, role_id: str) -> None:
    """Grant a role; granting it again is a no-op, as PUT should be."""
    role = get_role(s, role_id)
    target = _target(s, g)
    _actor(s, g)
    if role.domain_id and g.kind == "system":
        raise errors.BadRequest(f"Role {role_id} is a domain-specific role. Unable to use a domain-specific role "
                                "in a system assignment.")
    if role.domain_id and isinstance(target, Project) and target.domain_id != role.domain_id:
        raise errors.Forbidden(f"Project {target.id} must be in the same domain as the role {role_id} being assigned.")
    if s.get(Assignment, g.key(role_id)) is None:
        s.add(Assignment(type=g.type, actor_id=g.actor_id, target_id=g.target_id, role_id=role_id,
                         inherited=g.inherited))
        _flush(s, "Conflict occurred attempting to store role assignment - Duplicate entry.")


def check_grant(s: Session, g: Grant, role_id: str) -> None:
    get_role(s, role_id)
    _target(s, g)
    _actor(s, g)
    if s.get(Assignment, g.key(role_id)) is None:
        raise _not_found(g, role_id)


def list_grants(s: Session, g: Grant) -> list[Role]:
    _target(s, g)
    _actor(s, g)
    q = (select(Role).join(Assignment, Assignment.role_id == Role.id)
         .where(Assignment.type == g.type, Assignment.actor_id == g.actor_id, Assignment.target_id == g.target_id,
                Assignment.inherited.is_(g.inherited))
         .order_by(Role.name, Role.id))
    return list(s.scalars(q))


def remove_grant(s: Session, tokens: TokenService, g: Grant, role_id: str) -> None:
    """Revoke a grant and the tokens it fed. The actor may already be gone (Keystone allows that cleanup)."""
    get_role(s, role_id)
    _target(s, g)
    row = s.get(Assignment, g.key(role_id))
    if row is None:
        raise _not_found(g, role_id)
    s.delete(row)
    s.flush()
    revoke_tokens(s, tokens, g)


def revoke_tokens(s: Session, tokens: TokenService, g: Grant) -> None:
    """Revoke the tokens a grant could have put roles into: its users' tokens on the scopes it reaches."""
    if g.actor == "user":
        users = [g.actor_id]
    else:
        users = list(s.scalars(select(Membership.user_id).where(Membership.group_id == g.actor_id)))
    scopes: list[dict[str, str]]
    if g.kind == "project":
        scopes = [{"project_id": p} for p in (roles.descendant_ids(s, [g.target_id]) if g.inherited else [g.target_id])]
    elif g.kind == "domain":
        # A domain revocation covers the domain's scope and every project in it, which inherited grants reach.
        scopes = [{"domain_id": g.target_id}]
    else:
        # Revocation events have no system field; the user's tokens all go.
        scopes = [{}]
    for user_id in users:
        for scope in scopes:
            tokens.revoke(s, user_id=user_id, **scope)
