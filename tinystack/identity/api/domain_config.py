"""``/v3/domains/{domain_id}/config`` (whole, by group, by option) and the defaults under
``/v3/domains/config/.../default``, as Keystone serves them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity.service import IdentityService

CONFIG = "/v3/domains/{domain_id}/config"
_BODY: dict[str, Any] = {"type": "object", "required": ["config"],
                         "properties": {"config": {"type": "object", "minProperties": 1}}}


class DomainConfigAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc
        self.configs = svc.domain_configs

    def routes(self) -> list[Route]:
        out = [
            Route("GET", "/v3/domains/config/default", self.default),
            Route("GET", "/v3/domains/config/{group}/default", self.default),
            Route("GET", "/v3/domains/config/{group}/{option}/default", self.default),
            Route("PUT", CONFIG, self.create),
        ]
        for path in (CONFIG, CONFIG + "/{group}", CONFIG + "/{group}/{option}"):
            out += [Route("GET", path, self.get), Route("PATCH", path, self.update), Route("DELETE", path, self.delete)]
        return out + [Route("HEAD", r.path, r.handler) for r in out if r.method == "GET"]

    @staticmethod
    def _where(request: web.Request) -> tuple[str | None, str | None]:
        return request.match_info.get("group"), request.match_info.get("option")

    @staticmethod
    def _shape(value: Any, group: str | None, option: str | None) -> dict[str, Any]:
        if option is not None:
            return {"config": {option: value}}
        return {"config": value if group is None else {group: value}}

    async def get(self, request: web.Request) -> web.Response:
        group, option = self._where(request)
        value = self.configs.get(ctx(request), request.match_info["domain_id"], group, option)
        return json_response(self._shape(value, group, option))

    async def create(self, request: web.Request) -> web.Response:
        body = (await read_json(request, _BODY))["config"]
        config, created = await self.configs.create(ctx(request), request.match_info["domain_id"], body)
        return json_response({"config": config}, 201 if created else 200)

    async def update(self, request: web.Request) -> web.Response:
        group, option = self._where(request)
        body = (await read_json(request, _BODY))["config"]
        if option is not None and group is not None:
            body = {group: body}  # Keystone's option PATCH sends {"config": {option: value}}
        elif group is not None and group not in body:
            body = {group: body}
        config = await self.configs.update(ctx(request), request.match_info["domain_id"], body, group, option)
        return json_response({"config": config})

    async def delete(self, request: web.Request) -> web.Response:
        group, option = self._where(request)
        await self.configs.delete(ctx(request), request.match_info["domain_id"], group, option)
        return empty()

    async def default(self, request: web.Request) -> web.Response:
        group, option = self._where(request)
        return json_response(self._shape(self.configs.default(ctx(request), group, option), group, option))


def routes(svc: IdentityService) -> list[Route]:
    return DomainConfigAPI(svc).routes()
