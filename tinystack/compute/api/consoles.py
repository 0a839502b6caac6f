"""Remote consoles: ``POST /servers/{id}/remote-consoles`` (2.6+) and the legacy server actions before it
(``os-getVNCConsole``, ``os-getSerialConsole``, ...). Each answers a URL of the console proxy carrying a new
single-use token bound to the server (tinystack/console)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.compute.api.common import mid
from tinystack.compute.consoles import PROTOCOLS
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, Version, ctx, json_response, read_json, validate, version

REMOTE_CONSOLES_FROM = Version(2, 6)
WEBMKS_FROM = Version(2, 8)

# The actions 2.1-2.5 know, with the types each accepts (Nova's request schemas).
LEGACY_ACTIONS: dict[str, tuple[str, ...]] = {
    "os-getVNCConsole": ("novnc", "xvpvnc"), "os-getSPICEConsole": ("spice-html5",),
    "os-getRDPConsole": ("rdp-html5",), "os-getSerialConsole": ("serial",),
}


def _schema(v: Version) -> dict[str, Any]:
    protocols = [p for p in PROTOCOLS if p != "mks" or v >= WEBMKS_FROM]
    types = [t for p in protocols for t in PROTOCOLS[p]]
    return {"type": "object", "required": ["remote_console"], "additionalProperties": False, "properties": {
        "remote_console": {"type": "object", "required": ["protocol", "type"], "additionalProperties": False,
                           "properties": {"protocol": {"enum": protocols}, "type": {"enum": types}}}}}


async def _url(svc: ComputeService, request: web.Request, console_type: str) -> str:
    server_id = svc.consoles.check(ctx(request), mid(request, "server_id"), console_type)
    url: str = await svc.service("console").issue(server_id, console_type)
    return url


class ConsolesAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("POST", "/v2.1/servers/{server_id}/remote-consoles", self.create)]

    async def create(self, request: web.Request) -> web.Response:
        v = version(request)
        if v < REMOTE_CONSOLES_FROM:
            raise errors.NotFound("The resource could not be found.")
        body = await read_json(request, _schema(v))
        protocol, console_type = body["remote_console"]["protocol"], body["remote_console"]["type"]
        if console_type not in PROTOCOLS[protocol]:
            raise errors.BadRequest(f"Invalid console type {console_type} for protocol {protocol}.")
        url = await _url(self.svc, request, console_type)
        return json_response({"remote_console": {"protocol": protocol, "type": console_type, "url": url}})


async def legacy_action(svc: ComputeService, request: web.Request, name: str, arg: Any) -> web.Response:
    """One of ``LEGACY_ACTIONS`` from ``POST /servers/{id}/action``; from 2.6 on they are gone (404), as in Nova."""
    if version(request) >= REMOTE_CONSOLES_FROM:
        raise errors.NotFound(f"There is no such action: {name}")
    validate(arg, {"type": "object", "required": ["type"], "additionalProperties": False,
                   "properties": {"type": {"enum": list(LEGACY_ACTIONS[name])}}})
    console_type = arg["type"]
    return json_response({"console": {"type": console_type, "url": await _url(svc, request, console_type)}})
