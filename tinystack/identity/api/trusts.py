"""``/v3/OS-TRUST/trusts`` (with a trust's roles) as Keystone serves them."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import trust_schemas, views
from tinystack.identity.api.common import base_url, listing, with_head
from tinystack.identity.service import IdentityService
from tinystack.identity.trust_ops import TrustView

PREFIX = "/v3/OS-TRUST/trusts"


class TrustsAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return with_head([
            Route("POST", PREFIX, self.create),
            Route("GET", PREFIX, self.list_trusts),
            Route("GET", PREFIX + "/{trust_id}", self.get),
            Route("DELETE", PREFIX + "/{trust_id}", self.delete),
            Route("GET", PREFIX + "/{trust_id}/roles", self.roles),
            Route("GET", PREFIX + "/{trust_id}/roles/{role_id}", self.role),
        ])

    @staticmethod
    def _view(request: web.Request, found: TrustView) -> dict[str, object]:
        return views.trust(base_url(request), found.trust, found.roles)

    async def create(self, request: web.Request) -> web.Response:
        body = (await read_json(request, trust_schemas.TRUST_CREATE))["trust"]
        found = await self.svc.trusts.create(ctx(request), body)
        return json_response({"trust": self._view(request, found)}, 201)

    async def list_trusts(self, request: web.Request) -> web.Response:
        q = request.query
        found = self.svc.trusts.list_trusts(ctx(request), trustor=q.get("trustor_user_id"), trustee=q.get("trustee_user_id"))
        return listing(request, "trusts", [self._view(request, t) for t in found])

    async def get(self, request: web.Request) -> web.Response:
        found = self.svc.trusts.get(ctx(request), request.match_info["trust_id"])
        return json_response({"trust": self._view(request, found)})

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.trusts.delete(ctx(request), request.match_info["trust_id"])
        return empty()

    async def roles(self, request: web.Request) -> web.Response:
        trust_id = request.match_info["trust_id"]
        found = self.svc.trusts.roles(ctx(request), trust_id)
        base = base_url(request)
        return json_response(views.collection(base, f"OS-TRUST/trusts/{trust_id}/roles", "roles",
                                              [views.role_ref(base, r) for r in found]))

    async def role(self, request: web.Request) -> web.Response:
        m = request.match_info
        found = self.svc.trusts.role(ctx(request), m["trust_id"], m["role_id"])
        return json_response({"role": views.role_ref(base_url(request), found)})


def routes(svc: IdentityService) -> list[Route]:
    return TrustsAPI(svc).routes()
