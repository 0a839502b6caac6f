"""Networking API: Neutron v2.0 routes as data. Handlers parse the request, await the service (which runs the
rule and its transactions off the event loop, so concurrent requests really are concurrent against the
database) and render JSON."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from tinystack.core.auth import TokenValidator
from tinystack.core.bus import Bus
from tinystack.core.web import Route, ServiceApp, ctx, empty, json_response, neutron_fault, read_json
from tinystack.network import admin, routers, schemas, tags, trunks
from tinystack.network.api.discovery import discovery_routes
from tinystack.network.service import NetworkService

# URL segment → the service's collection name (Neutron spells a few with hyphens in URLs).
COLLECTIONS = {"networks": "networks", "subnets": "subnets", "subnetpools": "subnetpools", "ports": "ports",
               "routers": "routers", "floatingips": "floatingips", "security-groups": "security_groups",
               "security-group-rules": "security_group_rules", "address-scopes": "address_scopes",
               "trunks": "trunks"}
# Read-only collections: list (and show, when the resource has ids).
READ_ONLY = {"service-providers": ("service_providers", False), "segments": ("segments", True)}


def _query(request: web.Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query.items():
        out.setdefault(key, []).append(value)
    return out


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{request.path}"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NetworkAPI:
    def __init__(self, svc: NetworkService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        out = discovery_routes()
        for segment, plural in COLLECTIONS.items():
            base = f"/v2.0/{segment}"
            out += [Route("GET", base, self._index(plural)), Route("POST", base, self._create(plural)),
                    Route("GET", base + "/{id}", self._show(plural)), Route("PUT", base + "/{id}", self._update(plural)),
                    Route("DELETE", base + "/{id}", self._delete(plural)),
                    Route("GET", base + "/{id}/tags", self._tags(plural, "list")),
                    Route("PUT", base + "/{id}/tags", self._tags(plural, "replace")),
                    Route("DELETE", base + "/{id}/tags", self._tags(plural, "clear")),
                    Route("GET", base + "/{id}/tags/{tag}", self._tags(plural, "has")),
                    Route("PUT", base + "/{id}/tags/{tag}", self._tags(plural, "add")),
                    Route("DELETE", base + "/{id}/tags/{tag}", self._tags(plural, "remove"))]
        for segment, (plural, showable) in READ_ONLY.items():
            out.append(Route("GET", f"/v2.0/{segment}", self._index(plural)))
            if showable:
                out.append(Route("GET", f"/v2.0/{segment}/{{id}}", self._show(plural)))
        out += [
            Route("PUT", "/v2.0/routers/{id}/add_router_interface", self.add_interface),
            Route("PUT", "/v2.0/routers/{id}/remove_router_interface", self.remove_interface),
            Route("PUT", "/v2.0/trunks/{id}/add_subports", self.add_subports),
            Route("PUT", "/v2.0/trunks/{id}/remove_subports", self.remove_subports),
            Route("GET", "/v2.0/trunks/{id}/get_subports", self.get_subports),
            Route("GET", "/v2.0/quotas", self.quotas),
            Route("GET", "/v2.0/quotas/{project_id}", self.quota),
            Route("GET", "/v2.0/quotas/{project_id}/default", self.quota_default),
            Route("GET", "/v2.0/quotas/{project_id}/details", self.quota_details),
            Route("PUT", "/v2.0/quotas/{project_id}", self.quota_update),
            Route("DELETE", "/v2.0/quotas/{project_id}", self.quota_delete),
            Route("GET", "/v2.0/agents", self.agents),
            Route("GET", "/v2.0/agents/{id}", self.agent),
            Route("PUT", "/v2.0/agents/{id}", self.agent_update),
            Route("DELETE", "/v2.0/agents/{id}", self.agent_delete),
            Route("GET", "/v2.0/network-ip-availabilities", self.availabilities),
            Route("GET", "/v2.0/network-ip-availabilities/{id}", self.availability),
            Route("GET", "/v2.0/availability_zones", self.zones),
        ]
        return out

    # --- generic collections ------------------------------------------------------------------

    def _index(self, plural: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            return json_response(await self.svc.call(self.svc.list, ctx(request), plural, _query(request),
                                                     _base(request)))

        return handler

    def _create(self, plural: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            body = await read_json(request)
            return json_response(await self.svc.call(self.svc.create, ctx(request), plural, body), status=201)

        return handler

    def _show(self, plural: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            from tinystack.network.query import project

            item = await self.svc.call(self.svc.show, ctx(request), plural, request.match_info["id"])
            singular = self.svc.resource(plural).singular
            return json_response({singular: project(item, _query(request))})

        return handler

    def _update(self, plural: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            body = await read_json(request)
            return json_response(await self.svc.call(self.svc.update, ctx(request), plural, request.match_info["id"], body))

        return handler

    def _delete(self, plural: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            await self.svc.call(self.svc.delete, ctx(request), plural, request.match_info["id"])
            return empty()

        return handler

    def _tags(self, plural: str, op: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            c, ident, tag = ctx(request), request.match_info["id"], request.match_info.get("tag")
            if op == "list":
                return json_response({"tags": await self.svc.call(tags.list_tags, self.svc, c, plural, ident)})
            if op == "replace":
                body = await read_json(request)
                return json_response({"tags": await self.svc.call(tags.replace, self.svc, c, plural, ident, body)})
            if op == "clear":
                await self.svc.call(tags.remove, self.svc, c, plural, ident, None)
                return empty()
            if op == "has":
                await self.svc.call(tags.has_tag, self.svc, c, plural, ident, request.match_info["tag"])
                return empty()
            if op == "add":
                await self.svc.call(tags.add, self.svc, c, plural, ident, request.match_info["tag"])
                return empty(201)
            await self.svc.call(tags.remove, self.svc, c, plural, ident, tag)
            return empty()

        return handler

    # --- routers ------------------------------------------------------------------------------

    async def add_interface(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.ROUTER_INTERFACE)
        return json_response(await self.svc.call(routers.add_interface, self.svc, ctx(request), request.match_info["id"], body))

    async def remove_interface(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.ROUTER_INTERFACE)
        return json_response(await self.svc.call(routers.remove_interface, self.svc, ctx(request), request.match_info["id"],
                                         body))

    # --- trunks: subport actions answer the trunk itself, not wrapped (as Neutron) -------------

    async def add_subports(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        return json_response(await self.svc.call(trunks.add_subports, self.svc, ctx(request), request.match_info["id"],
                                                 body))

    async def remove_subports(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        return json_response(await self.svc.call(trunks.remove_subports, self.svc, ctx(request),
                                                 request.match_info["id"], body))

    async def get_subports(self, request: web.Request) -> web.Response:
        return json_response(await self.svc.call(trunks.get_subports, self.svc, ctx(request), request.match_info["id"]))

    # --- quotas -------------------------------------------------------------------------------

    async def quotas(self, request: web.Request) -> web.Response:
        return json_response({"quotas": await self.svc.call(admin.list_quotas, self.svc, ctx(request))})

    async def quota(self, request: web.Request) -> web.Response:
        pid = request.match_info["project_id"]
        if pid.endswith(".json"):
            pid = pid[:-5]
        return json_response({"quota": await self.svc.call(admin.show_quota, self.svc, ctx(request), pid)})

    async def quota_default(self, request: web.Request) -> web.Response:
        return json_response({"quota": await self.svc.call(admin.default_quota, self.svc, ctx(request),
                                                   request.match_info["project_id"])})

    async def quota_details(self, request: web.Request) -> web.Response:
        return json_response({"quota": await self.svc.call(admin.show_quota, self.svc, ctx(request),
                                                   request.match_info["project_id"], True)})

    async def quota_update(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        return json_response({"quota": await self.svc.call(admin.update_quota, self.svc, ctx(request),
                                                   request.match_info["project_id"], body)})

    async def quota_delete(self, request: web.Request) -> web.Response:
        await self.svc.call(admin.delete_quota, self.svc, ctx(request), request.match_info["project_id"])
        return empty()

    # --- agents, IP availability, zones -------------------------------------------------------

    async def agents(self, request: web.Request) -> web.Response:
        from tinystack.network.query import apply

        items = await self.svc.call(admin.list_agents, self.svc, ctx(request))
        return json_response(apply(items, _query(request), "agents", _base(request)))

    async def agent(self, request: web.Request) -> web.Response:
        return json_response({"agent": await self.svc.call(admin.show_agent, self.svc, ctx(request), request.match_info["id"])})

    async def agent_update(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        return json_response({"agent": await self.svc.call(admin.update_agent, self.svc, ctx(request),
                                                   request.match_info["id"], body)})

    async def agent_delete(self, request: web.Request) -> web.Response:
        await self.svc.call(admin.delete_agent, self.svc, ctx(request), request.match_info["id"])
        return empty()

    async def availabilities(self, request: web.Request) -> web.Response:
        from tinystack.network.query import apply

        items = await self.svc.call(admin.ip_availability, self.svc, ctx(request))
        for item in items:
            item["id"] = item["network_id"]  # paging keys on id
        body = apply(items, _query(request), "network_ip_availabilities", _base(request))
        for item in body["network_ip_availabilities"]:
            item.pop("id", None)
        return json_response(body)

    async def availability(self, request: web.Request) -> web.Response:
        items = await self.svc.call(admin.ip_availability, self.svc, ctx(request), request.match_info["id"])
        return json_response({"network_ip_availability": items[0]})

    async def zones(self, request: web.Request) -> web.Response:
        from tinystack.network.query import apply

        items = [{**z, "id": f"{z['resource']}-{z['name']}"} for z in admin.availability_zones()]
        body = apply(items, _query(request), "availability_zones", _base(request))
        for item in body["availability_zones"]:
            item.pop("id", None)
        return json_response(body)


def app(svc: NetworkService, validator: TokenValidator, bus: Bus, metadata_socket: str,
        lookup: Callable[[str], str | None]) -> ServiceApp:
    """The API with its controller and the DevStack bootstrap (run once identity's projects exist)."""
    from tinystack.network.bootstrap import Bootstrapper
    from tinystack.network.controller import Controller

    controller = Controller(svc, bus, metadata_socket)
    svc.controller = controller
    boot = Bootstrapper(svc, lookup)
    svc.prepare = boot.ensure
    tasks: list[asyncio.Task[None]] = []

    async def bootstrap_when_ready() -> None:
        # Identity bootstraps its projects after the APIs have started; wait for them.
        for _ in range(600):
            await asyncio.to_thread(boot.ensure)
            if boot.done:
                return
            await asyncio.sleep(0.2)

    async def start() -> None:
        await controller.start()
        tasks.append(asyncio.get_running_loop().create_task(bootstrap_when_ready()))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await controller.stop()

    return ServiceApp("network", NetworkAPI(svc).routes(), neutron_fault, validator=validator,
                      on_startup=[start], on_cleanup=[stop])
