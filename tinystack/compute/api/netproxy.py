"""Routes of Nova's network proxies (``os-security-groups``, ``os-networks``, ``os-floating-ips``,
``os-floating-ip-pools``, before microversion 2.36) and of a server's security groups (every microversion)."""

from __future__ import annotations

from aiohttp import web

from tinystack.compute import views
from tinystack.compute.api.common import mid
from tinystack.compute.netproxy import NetworkProxy
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, json_response, version

V = "/v2.1"


def _proxy_version(request: web.Request) -> None:
    # Nova removed the proxies at 2.36: a client that asks for a newer version gets 404, as from Nova.
    if version(request) >= views.V(2, 36):
        raise errors.NotFound("The resource could not be found.")


class NetworkProxyAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.proxy = NetworkProxy(svc)

    def routes(self) -> list[Route]:
        return [Route("GET", f"{V}/servers/{{server_id}}/os-security-groups", self.server_groups),
                Route("GET", f"{V}/os-security-groups", self.groups),
                Route("GET", f"{V}/os-security-groups/{{group_id}}", self.group),
                Route("GET", f"{V}/os-networks", self.networks),
                Route("GET", f"{V}/os-networks/{{network_id}}", self.network),
                Route("GET", f"{V}/os-floating-ip-pools", self.pools),
                Route("GET", f"{V}/os-floating-ips", self.fips),
                Route("GET", f"{V}/os-floating-ips/{{fip_id}}", self.fip)]

    async def server_groups(self, request: web.Request) -> web.Response:
        return json_response({"security_groups": self.proxy.server_groups(ctx(request), mid(request, "server_id"))})

    async def groups(self, request: web.Request) -> web.Response:
        _proxy_version(request)
        return json_response({"security_groups": self.proxy.security_groups(ctx(request))})

    async def group(self, request: web.Request) -> web.Response:
        _proxy_version(request)
        return json_response({"security_group": self.proxy.security_group(ctx(request), mid(request, "group_id"))})

    async def networks(self, request: web.Request) -> web.Response:
        _proxy_version(request)
        return json_response({"networks": self.proxy.networks(ctx(request))})

    async def network(self, request: web.Request) -> web.Response:
        _proxy_version(request)
        return json_response({"network": self.proxy.network(ctx(request), mid(request, "network_id"))})

    async def pools(self, request: web.Request) -> web.Response:
        _proxy_version(request)
        return json_response({"floating_ip_pools": self.proxy.floating_ip_pools(ctx(request))})

    async def fips(self, request: web.Request) -> web.Response:
        _proxy_version(request)
        return json_response({"floating_ips": self.proxy.floating_ips(ctx(request))})

    async def fip(self, request: web.Request) -> web.Response:
        _proxy_version(request)
        return json_response({"floating_ip": self.proxy.floating_ip(ctx(request), mid(request, "fip_id"))})
