"""Requests on roles, implied roles, grants and the role-assignment listing: the policy check (with the
target Keystone's rules inspect), the transaction and the rules of ``assignments.py``, for a caller's
context. Writes run off the event loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.identity import assignment_listing, assignments
from tinystack.identity.assignment_listing import Entry, Names, Query
from tinystack.identity.assignments import Grant
from tinystack.identity.models import Domain, Group, Project, Role, User

if TYPE_CHECKING:
    from tinystack.identity.service import IdentityService

GRANT_OPS = ("list", "check", "create", "revoke")


def key_flag(params: Mapping[str, str], name: str) -> bool:
    """Keystone's key-only query flags: present and not "0" means true."""
    return name in params and params[name] != "0"


def parse_query(params: Mapping[str, str]) -> Query:
    """``GET /v3/role_assignments``'s query string as filters; contradictory filters are a 400."""
    project_id, domain_id, system = params.get("scope.project.id"), params.get("scope.domain.id"), params.get("scope.system")
    user_id, group_id = params.get("user.id"), params.get("group.id")
    effective = key_flag(params, "effective")
    inherited = (params["scope.OS-INHERIT:inherited_to"] == "projects"
                 if "scope.OS-INHERIT:inherited_to" in params else None)
    if domain_id and project_id:
        raise errors.BadRequest("Specify a domain or project, not both")
    if domain_id and system:
        raise errors.BadRequest("Specify system or domain, not both")
    if project_id and system:
        raise errors.BadRequest("Specify system or project, not both")
    if user_id and group_id:
        raise errors.BadRequest("Specify a user or group, not both")
    if effective and group_id:
        raise errors.BadRequest("Combining effective and group filter will always result in an empty list.")
    if effective and inherited and domain_id:
        raise errors.BadRequest("Combining effective, domain and inherited filters will always result in an "
                                "empty list.")
    return Query(role_id=params.get("role.id") or None, user_id=user_id or None, group_id=group_id or None,
                 project_id=project_id or None, domain_id=domain_id or None, system=system == "all",
                 inherited=inherited, effective=effective, include_subtree=key_flag(params, "include_subtree"))


def grant_rule(op: str, g: Grant) -> str:
    """The rule for ``op`` (one of ``GRANT_OPS``) on a grant path: system grants have their own rules."""
    if g.kind != "system":
        return f"identity:{op}_grant"
    return f"identity:list_system_grants_for_{g.actor}" if op == "list" else f"identity:{op}_system_grant_for_{g.actor}"


def _role_attrs(role: Role | None) -> dict[str, Any]:
    """What policy rules may inspect of a role (``target.role.domain_id`` ...); empty when it does not exist."""
    return {"id": role.id, "name": role.name, "domain_id": role.domain_id or None} if role else {}


class Assignments:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    # --- roles -----------------------------------------------------------------------------

    def _enforce_role(self, s: Session, ctx: RequestContext, action: str, role_id: str) -> Role:
        """Enforce before admitting whether the role exists, as Keystone does; then 404 if it does not."""
        role = s.get(Role, role_id)
        rule = f"identity:{action}_domain_role" if role is not None and role.domain_id else f"identity:{action}_role"
        self.svc.enforce(ctx, rule, {"target": {"role": _role_attrs(role)}})
        return assignments.get_role(s, role_id)

    async def create_role(self, ctx: RequestContext, body: dict[str, Any]) -> Role:
        rule = "identity:create_domain_role" if body.get("domain_id") else "identity:create_role"
        self.svc.enforce(ctx, rule, {"target": {"role": body}})
        return await self.svc.write(lambda s: assignments.create_role(s, body))

    def list_roles(self, ctx: RequestContext, *, name: str | None, domain_id: str | None) -> list[Role]:
        target = {"target": {"role": {"domain_id": domain_id}}} if domain_id else {}
        self.svc.enforce(ctx, "identity:list_domain_roles" if domain_id else "identity:list_roles", target)
        with self.svc.session() as s:
            return assignments.list_roles(s, name, domain_id)

    def get_role(self, ctx: RequestContext, role_id: str) -> Role:
        with self.svc.session() as s:
            return self._enforce_role(s, ctx, "get", role_id)

    async def update_role(self, ctx: RequestContext, role_id: str, body: dict[str, Any]) -> Role:
        def update(s: Session) -> Role:
            self._enforce_role(s, ctx, "update", role_id)
            return assignments.update_role(s, role_id, body)

        return await self.svc.write(update)

    async def delete_role(self, ctx: RequestContext, role_id: str) -> None:
        def delete(s: Session) -> None:
            self._enforce_role(s, ctx, "delete", role_id)
            assignments.delete_role(s, role_id)

        await self.svc.write(delete)

    # --- implied roles ---------------------------------------------------------------------

    def _enforce_implied(self, s: Session, ctx: RequestContext, rule: str, prior_id: str, implied_id: str) -> None:
        target = {"prior_role": _role_attrs(s.get(Role, prior_id)), "implied_role": _role_attrs(s.get(Role, implied_id))}
        self.svc.enforce(ctx, f"identity:{rule}", {"target": target})

    async def create_implied(self, ctx: RequestContext, prior_id: str, implied_id: str) -> tuple[Role, Role]:
        def create(s: Session) -> tuple[Role, Role]:
            self._enforce_implied(s, ctx, "create_implied_role", prior_id, implied_id)
            return assignments.add_implied(s, prior_id, implied_id)

        return await self.svc.write(create)

    def get_implied(self, ctx: RequestContext, prior_id: str, implied_id: str, check: bool = False) -> tuple[Role, Role]:
        """The inference rule; ``check`` (HEAD) consults Keystone's check rule before the get rule."""
        with self.svc.session() as s:
            if check:
                self._enforce_implied(s, ctx, "check_implied_role", prior_id, implied_id)
            self._enforce_implied(s, ctx, "get_implied_role", prior_id, implied_id)
            return assignments.get_implied(s, prior_id, implied_id)

    async def delete_implied(self, ctx: RequestContext, prior_id: str, implied_id: str) -> None:
        def delete(s: Session) -> None:
            self._enforce_implied(s, ctx, "delete_implied_role", prior_id, implied_id)
            assignments.remove_implied(s, prior_id, implied_id)

        await self.svc.write(delete)

    def list_implied(self, ctx: RequestContext, prior_id: str) -> tuple[Role, list[Role]]:
        with self.svc.session() as s:
            self._enforce_implied(s, ctx, "list_implied_roles", prior_id, "")
            return assignments.implied_by(s, prior_id)

    def inference_rules(self, ctx: RequestContext) -> list[tuple[Role, list[Role]]]:
        self.svc.enforce(ctx, "identity:list_role_inference_rules", {})
        with self.svc.session() as s:
            return assignments.inference_rules(s)

    # --- grants ----------------------------------------------------------------------------

    def _enforce_grant(self, s: Session, ctx: RequestContext, op: str, g: Grant, role_id: str | None) -> None:
        """Policy sees whatever of the grant exists; missing pieces become 404s only after it allowed the call."""
        target: dict[str, Any] = {}
        if role_id is not None:
            target["role"] = _role_attrs(s.get(Role, role_id))
        actor: User | Group | None = s.get(User, g.actor_id) if g.actor == "user" else s.get(Group, g.actor_id)
        target[g.actor] = {"id": actor.id, "name": actor.name, "domain_id": actor.domain_id} if actor else {}
        if g.kind == "project":
            project = s.get(Project, g.target_id)
            target["project"] = {"id": project.id, "domain_id": project.domain_id} if project else {}
        elif g.kind == "domain":
            domain = s.get(Domain, g.target_id)
            target["domain"] = {"id": domain.id} if domain else {}
        self.svc.enforce(ctx, grant_rule(op, g), {"target": target})

    def list_grants(self, ctx: RequestContext, g: Grant) -> list[Role]:
        with self.svc.session() as s:
            self._enforce_grant(s, ctx, "list", g, None)
            return assignments.list_grants(s, g)

    def check_grant(self, ctx: RequestContext, g: Grant, role_id: str | None) -> None:
        with self.svc.session() as s:
            self._enforce_grant(s, ctx, "check", g, role_id)
            assignments.check_grant(s, g, role_id or "")

    async def create_grant(self, ctx: RequestContext, g: Grant, role_id: str | None) -> None:
        def create(s: Session) -> None:
            self._enforce_grant(s, ctx, "create", g, role_id)
            assignments.add_grant(s, g, role_id or "")

        await self.svc.write(create)

    async def revoke_grant(self, ctx: RequestContext, g: Grant, role_id: str | None) -> None:
        def revoke(s: Session) -> None:
            self._enforce_grant(s, ctx, "revoke", g, role_id)
            assignments.remove_grant(s, self.svc.tokens, g, role_id or "")

        await self.svc.write(revoke)

    # --- role assignments ------------------------------------------------------------------

    def list_assignments(self, ctx: RequestContext, params: Mapping[str, str]) -> tuple[list[Entry], Names | None]:
        """The assignments the query string selects, with their names when it asks for ``include_names``.
        Policy comes first, as Keystone checks it before it reads the filters."""
        if key_flag(params, "include_subtree"):
            self.svc.enforce(ctx, "identity:list_role_assignments_for_tree", {})
            if not params.get("scope.project.id"):
                raise errors.BadRequest("scope.project.id must be specified if include_subtree is also specified")
        else:
            self.svc.enforce(ctx, "identity:list_role_assignments", {})
        q = parse_query(params)
        with self.svc.session() as s:
            found = assignment_listing.list_assignments(s, q)
            names = assignment_listing.names_for(s, found) if key_flag(params, "include_names") else None
        return found, names
