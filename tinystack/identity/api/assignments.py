"""``/v3/roles``, implied roles, ``/v3/role_inferences``, the grant paths (projects, domains, system,
OS-INHERIT) and ``/v3/role_assignments``, as Keystone serves them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import assignment_schemas as schemas
from tinystack.identity import assignment_views, views
from tinystack.identity.api.common import base_url
from tinystack.identity.assignment_views import INHERITED_SUFFIX
from tinystack.identity.assignments import Grant
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


def _self_link(request: web.Request) -> str:
    path = request.path.removeprefix("/v3/")
    return f"{path}?{request.query_string}" if request.query_string else path


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

    async def create_role(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.ROLE_CREATE))["role"]
        role = await self.svc.assignments.create_role(ctx(request), body)
        return json_response({"role": views.role(base_url(request), role)}, 201)

    async def list_roles(self, request: web.Request) -> web.Response:
        found = self.svc.assignments.list_roles(ctx(request), name=request.query.get("name"),
                                                domain_id=request.query.get("domain_id") or None)
        base = base_url(request)
        return json_response(views.collection(base, _self_link(request), "roles", [views.role(base, r) for r in found]))

    async def show_role(self, request: web.Request) -> web.Response:
        role = self.svc.assignments.get_role(ctx(request), request.match_info["role_id"])
        return json_response({"role": views.role(base_url(request), role)})

    async def update_role(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.ROLE_UPDATE))["role"]
        role = await self.svc.assignments.update_role(ctx(request), request.match_info["role_id"], body)
        return json_response({"role": views.role(base_url(request), role)})

    async def delete_role(self, request: web.Request) -> web.Response:
        await self.svc.assignments.delete_role(ctx(request), request.match_info["role_id"])
        return empty()

    # --- implied roles ---------------------------------------------------------------------

    async def create_implied(self, request: web.Request) -> web.Response:
        m = request.match_info
        prior, implied = await self.svc.assignments.create_implied(ctx(request), m["prior_id"], m["implied_id"])
        return json_response(assignment_views.inference(base_url(request), prior, implied), 201)

    async def show_implied(self, request: web.Request) -> web.Response:
        m = request.match_info
        prior, implied = self.svc.assignments.get_implied(ctx(request), m["prior_id"], m["implied_id"])
        return json_response(assignment_views.inference(base_url(request), prior, implied))

    async def check_implied(self, request: web.Request) -> web.Response:
        m = request.match_info
        self.svc.assignments.get_implied(ctx(request), m["prior_id"], m["implied_id"], check=True)
        return empty()

    async def delete_implied(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.svc.assignments.delete_implied(ctx(request), m["prior_id"], m["implied_id"])
        return empty()

    async def list_implied(self, request: web.Request) -> web.Response:
        prior, implied = self.svc.assignments.list_implied(ctx(request), request.match_info["prior_id"])
        return json_response(assignment_views.implied_by(base_url(request), prior, implied))

    async def list_inferences(self, request: web.Request) -> web.Response:
        rules = self.svc.assignments.inference_rules(ctx(request))
        return json_response(assignment_views.inference_rules(base_url(request), rules))

    # --- grants ----------------------------------------------------------------------------

    def _grant_handler(self, op: str, actor: str, kind: str, inherited: bool) -> Handler:
        """One grant operation on one grant path; the path fixes the actor, target kind and inheritance."""

        async def handler(request: web.Request) -> web.Response:
            m = request.match_info
            g = Grant(actor, m["actor_id"], kind, m.get("target_id", SYSTEM), inherited)
            c = ctx(request)
            if op == "list":
                base = base_url(request)
                items = [views.role(base, r) for r in self.svc.assignments.list_grants(c, g)]
                return json_response(views.collection(base, _self_link(request), "roles", items))
            if op == "check":
                self.svc.assignments.check_grant(c, g, m.get("role_id"))
            elif op == "create":
                await self.svc.assignments.create_grant(c, g, m.get("role_id"))
            else:
                await self.svc.assignments.revoke_grant(c, g, m.get("role_id"))
            return empty()

        return handler

    # --- role assignments ------------------------------------------------------------------

    async def list_assignments(self, request: web.Request) -> web.Response:
        found, names = self.svc.assignments.list_assignments(ctx(request), request.query)
        base = base_url(request)
        items = [assignment_views.render_assignment(base, e, names) for e in found]
        return json_response(views.collection(base, _self_link(request), "role_assignments", items))


def routes(svc: IdentityService) -> list[Route]:
    return AssignmentsAPI(svc).routes()
