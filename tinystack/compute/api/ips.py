"""``/servers/{id}/ips``: a server's addresses by network, in the basic form (version and address only)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.compute.api.common import mid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, json_response

S = "/v2.1/servers/{server_id}/ips"


def basic(addresses: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {net: [{"version": a["version"], "addr": a["addr"]} for a in addrs] for net, addrs in addresses.items()}


class IpsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("GET", S, self.index), Route("GET", f"{S}/{{network}}", self.show)]

    def _addresses(self, request: web.Request, rule: str) -> dict[str, list[dict[str, Any]]]:
        c = ctx(request)
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, c, mid(request, "server_id"), f"os_compute_api:ips:{rule}")
            return basic(inst.addresses or {})

    async def index(self, request: web.Request) -> web.Response:
        return json_response({"addresses": self._addresses(request, "index")})

    async def show(self, request: web.Request) -> web.Response:
        addresses = self._addresses(request, "show")
        network = mid(request, "network")
        if network not in addresses:
            raise errors.NotFound("Instance is not a member of specified network")
        return json_response({network: addresses[network]})
