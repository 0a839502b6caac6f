"""``/v3/roles``, implied roles, ``/v3/role_inferences``, the grant paths (projects, domains, system,
OS-INHERIT) and ``/v3/role_assignments``, as Keystone serves them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import assignment_listing, assignments, views
from tinystack.identity import assignment_schemas as schemas
from tinystack.identity.api.common import base_url
from tinystack.identity.assignment_listing import Entry, Names, Query
from tinystack.identity.assignments import Grant
from tinystack.identity.models import Domain, Group, Project, Role, User
from tinystack.identity.roles import SYSTEM
from tinystack.identity.service import IdentityService

Handler = Callable[[web.Request], Awaitable[web.Response]]

# (path prefix, actor, target kind, inherited, has a list route); the member path adds "/{role_id}".
GRANT_PATHS: tuple[tuple[str, str, str, bool, bool], ...] = (
    ("/v3/projects/{target_id}/users/{actor_id}/roles", "user", "project", False, True),
    ("/v3/projects/{target_id}/groups/{actor_id}/roles", "group", "project", False, True),
    ("/v3/domains/{target_id}/users/{actor_id}/roles", "user", "domain", False, True),
    ("/v3/domains/{target_id}/groups/{actor_id}/roles", "group", "domain", False, True),
    ("/v3/system/users/{actor_id}/roles", "user", "system", False, True),
    ("/v3/system/groups/{actor_id}/roles", "group", "system", False, True),
    ("/v3/OS-INHERIT/domains/{target_id}/users/{actor_id}/roles", "user", "domain", True, True),
    ("/v3/OS-INHERIT/domains/{target_id}/groups/{actor_id}/roles", "group", "domain", True, True),
    ("/v3/OS-INHERIT/projects/{target_id}/users/{actor_id}/roles", "user", "project", True, False),
    ("/v3/OS-INHERIT/projects/{target_id}/groups/{actor_id}/roles", "group", "project", True, False),
)
INHERITED_SUFFIX = "/inherited_to_projects"


def _flag(request: web.Request, name: str) -> bool:
    """Keystone's key-only query flags: present and not "0" means true."""
    return name in request.query and request.query[name] != "0"


def _self_link(request: web.Request) -> str:
    path = request.path.removeprefix("/v3/")
    return f"{path}?{request.query_string}" if request.query_string else path


def _role_attrs(role: Role | None) -> dict[str, Any]:
    """What policy rules may inspect of a role (``target.role.domain_id`` ...); empty when it does not exist."""
    return {"id": role.id, "name": role.name, "domain_id": role.domain_id or None} if role else {}


class AssignmentsAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        out = [
            Route("POST", "/v3/roles", self.create_role),
            *self._get_head("/v3/roles", self.list_roles),
            *self._get_head("/v3/roles/{role_id}", self.show_role),
            Route("PATCH", "/v3/roles/{role_id}", self.update_role),
            Route("DELETE", "/v3/roles/{role_id}", self.delete_role),
            *self._get_head("/v3/roles/{prior_id}/implies", self.list_implied),
            Route("PUT", "/v3/roles/{prior_id}/implies/{implied_id}", self.create_implied),
            Route("GET", "/v3/roles/{prior_id}/implies/{implied_id}", self.show_implied),
            Route("HEAD", "/v3/roles/{prior_id}/implies/{implied_id}", self.check_implied),
            Route("DELETE", "/v3/roles/{prior_id}/implies/{implied_id}", self.delete_implied),
            *self._get_head("/v3/role_inferences", self.list_inferences),
            *self._get_head("/v3/role_assignments", self.list_assignments),
        ]
        for prefix, actor, kind, inherited, has_list in GRANT_PATHS:
            suffix = INHERITED_SUFFIX if inherited else ""
            if has_list:
                out += self._get_head(prefix + suffix, self._grant_handler("list", actor, kind, inherited))
            member = f"{prefix}/{{role_id}}{suffix}"
            out += self._get_head(member, self._grant_handler("check", actor, kind, inherited))
            out.append(Route("PUT", member, self._grant_handler("create", actor, kind, inherited)))
            out.append(Route("DELETE", member, self._grant_handler("revoke", actor, kind, inherited)))
        return out

    @staticmethod
    def _get_head(path: str, handler: Handler) -> list[Route]:
        return [Route("GET", path, handler), Route("HEAD", path, handler)]

    # --- roles -----------------------------------------------------------------------------

    def _enforce_role(self, request: web.Request, s: Session, action: str, role_id: str) -> Role:
        """Enforce before admitting whether the role exists, as Keystone does; then 404 if it does not."""
        role = s.get(Role, role_id)
        rule = f"identity:{action}_domain_role" if role is not None and role.domain_id else f"identity:{action}_role"
        self.svc.enforce(ctx(request), rule, {"target": {"role": _role_attrs(role)}})
        return assignments.get_role(s, role_id)

    async def create_role(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.ROLE_CREATE))["role"]
        rule = "identity:create_domain_role" if body.get("domain_id") else "identity:create_role"
        self.svc.enforce(ctx(request), rule, {"target": {"role": body}})
        with self.svc.write() as s:
            role = views.role(base_url(request), assignments.create_role(s, body))
        return json_response({"role": role}, 201)

    async def list_roles(self, request: web.Request) -> web.Response:
        domain_id = request.query.get("domain_id") or None
        target = {"target": {"role": {"domain_id": domain_id}}} if domain_id else {}
        self.svc.enforce(ctx(request), "identity:list_domain_roles" if domain_id else "identity:list_roles", target)
        base = base_url(request)
        with self.svc.read() as s:
            items = [views.role(base, r) for r in assignments.list_roles(s, request.query.get("name"), domain_id)]
        return json_response(views.collection(base, _self_link(request), "roles", items))

    async def show_role(self, request: web.Request) -> web.Response:
        with self.svc.read() as s:
            role = views.role(base_url(request), self._enforce_role(request, s, "get", request.match_info["role_id"]))
        return json_response({"role": role})

    async def update_role(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.ROLE_UPDATE))["role"]
        role_id = request.match_info["role_id"]
        with self.svc.write() as s:
            self._enforce_role(request, s, "update", role_id)
            role = views.role(base_url(request), assignments.update_role(s, role_id, body))
        return json_response({"role": role})

    async def delete_role(self, request: web.Request) -> web.Response:
        role_id = request.match_info["role_id"]
        with self.svc.write() as s:
            self._enforce_role(request, s, "delete", role_id)
            assignments.delete_role(s, role_id)
        return empty()

    # --- implied roles ---------------------------------------------------------------------

    def _enforce_implied(self, request: web.Request, s: Session, action: str) -> None:
        prior = s.get(Role, request.match_info["prior_id"])
        implied = s.get(Role, request.match_info.get("implied_id", ""))
        target = {"prior_role": _role_attrs(prior), "implied_role": _role_attrs(implied)}
        self.svc.enforce(ctx(request), f"identity:{action}", {"target": target})

    def _inference(self, request: web.Request, prior: Role, implied: Role) -> dict[str, Any]:
        base = base_url(request)
        return {"role_inference": {"prior_role": views.role_ref(base, prior), "implies": views.role_ref(base, implied)},
                "links": views.link(base, f"roles/{prior.id}/implies/{implied.id}")}

    async def create_implied(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            self._enforce_implied(request, s, "create_implied_role")
            prior, implied = assignments.add_implied(s, request.match_info["prior_id"], request.match_info["implied_id"])
            body = self._inference(request, prior, implied)
        return json_response(body, 201)

    async def show_implied(self, request: web.Request) -> web.Response:
        with self.svc.read() as s:
            self._enforce_implied(request, s, "get_implied_role")
            prior, implied = assignments.get_implied(s, request.match_info["prior_id"], request.match_info["implied_id"])
            body = self._inference(request, prior, implied)
        return json_response(body)

    async def check_implied(self, request: web.Request) -> web.Response:
        with self.svc.read() as s:
            self._enforce_implied(request, s, "check_implied_role")
            self._enforce_implied(request, s, "get_implied_role")
            assignments.get_implied(s, request.match_info["prior_id"], request.match_info["implied_id"])
        return empty()

    async def delete_implied(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            self._enforce_implied(request, s, "delete_implied_role")
            assignments.remove_implied(s, request.match_info["prior_id"], request.match_info["implied_id"])
        return empty()

    async def list_implied(self, request: web.Request) -> web.Response:
        base = base_url(request)
        with self.svc.read() as s:
            self._enforce_implied(request, s, "list_implied_roles")
            prior, implied = assignments.implied_by(s, request.match_info["prior_id"])
            body = {"role_inference": {"prior_role": views.role_ref(base, prior),
                                       "implies": [views.role_ref(base, r) for r in implied]},
                    "links": views.link(base, f"roles/{prior.id}/implies")}
        return json_response(body)

    async def list_inferences(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "identity:list_role_inference_rules")
        base = base_url(request)
        with self.svc.read() as s:
            rules = [{"prior_role": views.role_ref(base, prior), "implies": [views.role_ref(base, r) for r in implied]}
                     for prior, implied in assignments.inference_rules(s)]
        return json_response({"role_inferences": rules})

    # --- grants ----------------------------------------------------------------------------

    def _grant_handler(self, op: str, actor: str, kind: str, inherited: bool) -> Handler:
        """One grant operation on one grant path; the path fixes the actor, target kind and inheritance."""
        if kind == "system":
            rule = f"identity:list_system_grants_for_{actor}" if op == "list" else f"identity:{op}_system_grant_for_{actor}"
        else:
            rule = f"identity:{op}_grant"
        action = {"list": self._list_grants, "check": self._check_grant, "create": self._create_grant,
                  "revoke": self._revoke_grant}[op]

        async def handler(request: web.Request) -> web.Response:
            m = request.match_info
            g = Grant(actor, m["actor_id"], kind, m.get("target_id", SYSTEM), inherited)
            return action(request, rule, g, m.get("role_id"))

        return handler

    def _list_grants(self, request: web.Request, rule: str, g: Grant, _role_id: str | None) -> web.Response:
        base = base_url(request)
        with self.svc.read() as s:
            self._enforce_grant(request, s, rule, g, None)
            items = [views.role(base, r) for r in assignments.list_grants(s, g)]
        return json_response(views.collection(base, _self_link(request), "roles", items))

    def _check_grant(self, request: web.Request, rule: str, g: Grant, role_id: str | None) -> web.Response:
        with self.svc.read() as s:
            self._enforce_grant(request, s, rule, g, role_id)
            assignments.check_grant(s, g, role_id or "")
        return empty()

    def _create_grant(self, request: web.Request, rule: str, g: Grant, role_id: str | None) -> web.Response:
        with self.svc.write() as s:
            self._enforce_grant(request, s, rule, g, role_id)
            assignments.add_grant(s, g, role_id or "")
        return empty()

    def _revoke_grant(self, request: web.Request, rule: str, g: Grant, role_id: str | None) -> web.Response:
        with self.svc.write() as s:
            self._enforce_grant(request, s, rule, g, role_id)
            assignments.remove_grant(s, self.svc.tokens, g, role_id or "")
        return empty()

    def _enforce_grant(self, request: web.Request, s: Session, rule: str, g: Grant, role_id: str | None) -> None:
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
        self.svc.enforce(ctx(request), rule, {"target": target})

    # --- role assignments ------------------------------------------------------------------

    def _query(self, request: web.Request) -> Query:
        qs = request.query
        project_id, domain_id, system = qs.get("scope.project.id"), qs.get("scope.domain.id"), qs.get("scope.system")
        user_id, group_id = qs.get("user.id"), qs.get("group.id")
        effective = _flag(request, "effective")
        inherited = qs["scope.OS-INHERIT:inherited_to"] == "projects" if "scope.OS-INHERIT:inherited_to" in qs else None
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
        return Query(role_id=qs.get("role.id") or None, user_id=user_id or None, group_id=group_id or None,
                     project_id=project_id or None, domain_id=domain_id or None, system=system == "all",
                     inherited=inherited, effective=effective, include_subtree=_flag(request, "include_subtree"))

    async def list_assignments(self, request: web.Request) -> web.Response:
        if _flag(request, "include_subtree"):
            self.svc.enforce(ctx(request), "identity:list_role_assignments_for_tree")
            if not request.query.get("scope.project.id"):
                raise errors.BadRequest("scope.project.id must be specified if include_subtree is also specified")
        else:
            self.svc.enforce(ctx(request), "identity:list_role_assignments")
        q = self._query(request)
        base = base_url(request)
        with self.svc.read() as s:
            found = assignment_listing.list_assignments(s, q)
            names = assignment_listing.names_for(s, found) if _flag(request, "include_names") else None
        items = [render_assignment(base, e, names) for e in found]
        return json_response(views.collection(base, _self_link(request), "role_assignments", items))


def _ref(table: dict[str, tuple[str, str]], names: Names, ident: str) -> dict[str, Any]:
    name, domain_id = table.get(ident, ("", ""))
    return {"id": ident, "name": name, "domain": {"id": domain_id, "name": names.domains.get(domain_id, "")}}


def render_assignment(base: str, e: Entry, names: Names | None) -> dict[str, Any]:
    """One entry of ``role_assignments`` in Keystone's shape; ``links.assignment`` is the grant it stems from."""
    out: dict[str, Any] = {}
    links: dict[str, str] = {}
    if e.project_id:
        out["scope"] = {"project": _ref(names.projects, names, e.project_id) if names else {"id": e.project_id}}
        path = (f"/domains/{e.via_domain}" if e.via_domain else
                f"/projects/{e.via_project}" if e.via_project else f"/projects/{e.project_id}")
    elif e.domain_id:
        domain = {"id": e.domain_id, "name": names.domains.get(e.domain_id, "")} if names else {"id": e.domain_id}
        out["scope"] = {"domain": domain}
        path = f"/domains/{e.domain_id}"
    else:
        out["scope"] = {"system": {"all": True}}
        path = "/system"
    if e.user_id:
        out["user"] = _ref(names.users, names, e.user_id) if names else {"id": e.user_id}
        if e.via_group:
            links["membership"] = f"{base}/v3/groups/{e.via_group}/users/{e.user_id}"
            path += f"/groups/{e.via_group}"
        else:
            path += f"/users/{e.user_id}"
    elif e.group_id:
        out["group"] = _ref(names.groups, names, e.group_id) if names else {"id": e.group_id}
        path += f"/groups/{e.group_id}"
    role: dict[str, Any] = {"id": e.role_id}
    if names:
        role_name, role_domain = names.roles.get(e.role_id, ("", ""))
        role["name"] = role_name
        if role_domain:
            role["domain"] = {"id": role_domain, "name": names.domains.get(role_domain, "")}
    out["role"] = role
    path += f"/roles/{e.prior_role_id or e.role_id}"
    if e.inherited:
        out["scope"]["OS-INHERIT:inherited_to"] = "projects"
        path = f"/OS-INHERIT{path}{INHERITED_SUFFIX}"
    links["assignment"] = f"{base}/v3{path}"
    if e.prior_role_id:
        links["prior_role"] = f"{base}/v3/roles/{e.prior_role_id}/implies/{e.role_id}"
    out["links"] = links
    return out


def routes(svc: IdentityService) -> list[Route]:
    return AssignmentsAPI(svc).routes()

