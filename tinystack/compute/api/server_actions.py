"""``POST /servers/{id}/action``: the body's one key names the action. ``ACTIONS`` is the table of them: each has
its schema (``schemas_actions``), the microversions it exists in, and one call of the compute service."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tinystack.compute import schemas_actions as sa
from tinystack.compute import views
from tinystack.compute.api import consoles
from tinystack.compute.api.common import base, mid, rid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.web import Route, Version, ctx, empty, json_response, read_json, validate, version

V = views.V
FIRST = V(2, 1)


@dataclass(frozen=True)
class Call:
    """One action request, parsed: who, on which server, at which microversion, with which arguments."""

    request: web.Request
    ctx: RequestContext
    sid: str
    rid: str
    version: Version
    args: dict[str, Any]  # the action's value; {} when the client sent null


# An action's call: None answers 202 with no body; a response is sent as it is.
Run = Callable[[ComputeService, Call], "web.Response | Awaitable[web.Response | None] | None"]


@dataclass(frozen=True)
class Action:
    schema: Mapping[str, Any]
    run: Run
    since: Version = FIRST
    until: Version | None = None  # the last microversion it exists in; None: still there

    def fits(self, v: Version) -> bool:
        return v >= self.since and (self.until is None or v <= self.until)


def _create_image(svc: ComputeService, c: Call) -> web.Response:
    image_id = svc.lifecycle.create_image(c.ctx, c.sid, c.rid, c.args["name"], c.args.get("metadata") or {})
    if c.version >= V(2, 45):
        return json_response({"image_id": image_id}, status=202)
    loc = f"{base(c.request).rsplit('/v2.1', 1)[0]}/images/{image_id}"
    return empty(202, headers={"Location": loc})


def _rebuild(svc: ComputeService, c: Call) -> web.Response:
    password = svc.lifecycle.rebuild(c.ctx, c.sid, c.rid, c.args)
    inst = svc.servers.get(c.ctx, c.sid)
    out = views.server(inst, base(c.request), c.version, c.ctx,
                       svc.allowed(c.ctx, "os_compute_api:os-extended-server-attributes"))
    out = views.basic_before_275(out, c.version)
    out["adminPass"] = password
    return json_response({"server": out}, status=202)


def _evacuate(svc: ComputeService, c: Call) -> web.Response:
    password = svc.lifecycle.evacuate(c.ctx, c.sid, c.rid, c.args.get("host"), c.args.get("adminPass"))
    return json_response({"adminPass": password} if c.version < V(2, 14) else {}, status=200)


def _confirm_resize(svc: ComputeService, c: Call) -> web.Response:
    svc.lifecycle.confirm_resize(c.ctx, c.sid, c.rid)
    return empty(204)


def _restore(svc: ComputeService, c: Call) -> None:
    raise errors.Conflict("Soft delete is off (reclaim_instance_interval = 0): nothing to restore.")


def _flavor_id(ref: Any) -> str:
    """A flavorRef may be a link: its last path segment is the id."""
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


ACTIONS: dict[str, tuple[Action, ...]] = {
    "os-stop": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.stop(c.ctx, c.sid, c.rid)),),
    "os-start": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.start(c.ctx, c.sid, c.rid)),),
    "reboot": (Action(sa.REBOOT, lambda svc, c: svc.actions.reboot(c.ctx, c.sid, c.rid,
                                                                   hard=c.args["type"].upper() == "HARD")),),
    "pause": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.pause(c.ctx, c.sid, c.rid)),),
    "unpause": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.unpause(c.ctx, c.sid, c.rid)),),
    "suspend": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.suspend(c.ctx, c.sid, c.rid)),),
    "resume": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.resume(c.ctx, c.sid, c.rid)),),
    # 2.73 added the reason; before it Nova ignored the body.
    "lock": (Action(sa.ANYTHING, lambda svc, c: svc.actions.lock(c.ctx, c.sid, c.rid, None), until=V(2, 72)),
             Action(sa.LOCK_2_73, lambda svc, c: svc.actions.lock(c.ctx, c.sid, c.rid, c.args.get("locked_reason")),
                    since=V(2, 73))),
    "unlock": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.unlock(c.ctx, c.sid, c.rid)),),
    "rescue": (Action(sa.RESCUE, lambda svc, c: json_response(
        {"adminPass": svc.actions.rescue(c.ctx, c.sid, c.rid, c.args.get("adminPass"),
                                         c.args.get("rescue_image_ref"))})),),
    "unrescue": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.unrescue(c.ctx, c.sid, c.rid)),),
    "changePassword": (Action(sa.CHANGE_PASSWORD, lambda svc, c: svc.actions.change_password(
        c.ctx, c.sid, c.rid, c.args["adminPass"])),),
    "os-resetState": (Action(sa.RESET_STATE, lambda svc, c: svc.actions.reset_state(
        c.ctx, c.sid, c.rid, c.args["state"])),),
    "resetNetwork": (Action(sa.NO_ARGS, lambda svc, c: svc.actions.reset_network(c.ctx, c.sid, c.rid)),),
    "createImage": (Action(sa.CREATE_IMAGE, _create_image),),
    "rebuild": (Action(sa.REBUILD, _rebuild),),
    "resize": (Action(sa.RESIZE, lambda svc, c: svc.lifecycle.resize(c.ctx, c.sid, c.rid,
                                                                     _flavor_id(c.args["flavorRef"]))),),
    "confirmResize": (Action(sa.NO_ARGS, _confirm_resize),),
    "revertResize": (Action(sa.NO_ARGS, lambda svc, c: svc.lifecycle.revert_resize(c.ctx, c.sid, c.rid)),),
    "shelve": (Action(sa.NO_ARGS, lambda svc, c: svc.lifecycle.shelve(c.ctx, c.sid, c.rid)),),
    # Shelving already offloads (Nova's shelved_offload_time = 0): nothing is left to do.
    "shelveOffload": (Action(sa.NO_ARGS, lambda svc, c: None),),
    "unshelve": (Action(sa.UNSHELVE, lambda svc, c: svc.lifecycle.unshelve(
        c.ctx, c.sid, c.rid, c.args.get("availability_zone"))),),
    "migrate": (Action(sa.MIGRATE, lambda svc, c: svc.lifecycle.migrate(c.ctx, c.sid, c.rid, c.args.get("host"))),),
    "os-migrateLive": (Action(sa.MIGRATE_LIVE, lambda svc, c: svc.lifecycle.live_migrate(
        c.ctx, c.sid, c.rid, c.args.get("host"))),),
    "evacuate": (Action(sa.EVACUATE, _evacuate),),
    "os-getConsoleOutput": (Action(sa.CONSOLE_OUTPUT, lambda svc, c: json_response(
        {"output": svc.subres.console_output(c.ctx, c.sid, c.args.get("length"))})),),
    "addSecurityGroup": (Action(sa.SECURITY_GROUP, lambda svc, c: svc.subres.security_group(
        c.ctx, c.sid, c.rid, c.args["name"], add=True)),),
    "removeSecurityGroup": (Action(sa.SECURITY_GROUP, lambda svc, c: svc.subres.security_group(
        c.ctx, c.sid, c.rid, c.args["name"], add=False)),),
    "forceDelete": (Action(sa.NO_ARGS, lambda svc, c: svc.servers.delete(c.ctx, c.sid, c.rid, force=True)),),
    "restore": (Action(sa.NO_ARGS, _restore),),
}


def _legacy_console(name: str) -> Run:
    return lambda svc, c: consoles.legacy_action(svc, c.request, name, c.args)


# The console actions 2.1-2.5 know (remote-consoles replaced them at 2.6).
ACTIONS.update({name: (Action({"type": "object", "required": ["type"], "additionalProperties": False,
                               "properties": {"type": {"enum": list(types)}}},
                              _legacy_console(name), until=V(2, 5)),)
                for name, types in consoles.LEGACY_ACTIONS.items()})

# The body holds exactly one action: which one is checked against the table, its value against its schema.
BODY = {"type": "object", "minProperties": 1, "maxProperties": 1}


def lookup(name: str, v: Version) -> Action:
    """The action ``name`` as it exists at microversion ``v``; 400 (Nova's answer) when there is none."""
    for action in ACTIONS.get(name, ()):
        if action.fits(v):
            return action
    if name in ACTIONS:  # an action of other microversions: Nova's "version not found" is a 404
        raise errors.NotFound(f"There is no such action: {name}")
    raise errors.BadRequest(f"There is no such action: {name}")


class ActionsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("POST", "/v2.1/servers/{server_id}/action", self.action)]

    async def action(self, request: web.Request) -> web.Response:
        body = await read_json(request, BODY)
        name, args = next(iter(body.items()))
        v = version(request)
        action = lookup(name, v)
        # Validated inside the body, so a fault names the field with its action: "reboot/type".
        validate(body, {"type": "object", "properties": {name: action.schema}})
        call = Call(request, ctx(request), mid(request, "server_id"), rid(request), v,
                    args if isinstance(args, dict) else {})
        out = action.run(self.svc, call)
        if inspect.isawaitable(out):
            out = await out
        return out if isinstance(out, web.Response) else empty(202)
