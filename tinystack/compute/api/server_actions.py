"""``POST /servers/{id}/action``: one body key names the action; each maps to one rule call."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.compute import views
from tinystack.compute.api import consoles
from tinystack.compute.api.common import base, mid, rid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json, version


class ActionsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("POST", "/v2.1/servers/{server_id}/action", self.action)]

    async def action(self, request: web.Request) -> web.Response:
        body = await read_json(request, {"type": "object", "minProperties": 1})
        name = next(iter(body))
        arg = body[name]
        c, sid, r, v = ctx(request), mid(request, "server_id"), rid(request), version(request)
        a, life = self.svc.actions, self.svc.lifecycle
        arg_d: dict[str, Any] = arg if isinstance(arg, dict) else {}
        if name == "os-stop":
            a.stop(c, sid, r)
        elif name == "os-start":
            a.start(c, sid, r)
        elif name == "reboot":
            kind = str(arg_d.get("type", "")).upper()
            if kind not in ("SOFT", "HARD"):
                raise errors.BadRequest("Invalid input for field/attribute type: must be SOFT or HARD")
            a.reboot(c, sid, r, hard=kind == "HARD")
        elif name == "pause":
            a.pause(c, sid, r)
        elif name == "unpause":
            a.unpause(c, sid, r)
        elif name == "suspend":
            a.suspend(c, sid, r)
        elif name == "resume":
            a.resume(c, sid, r)
        elif name == "lock":
            a.lock(c, sid, r, arg_d.get("locked_reason") if v >= views.V(2, 73) else None)
        elif name == "unlock":
            a.unlock(c, sid, r)
        elif name == "rescue":
            return json_response({"adminPass": a.rescue(c, sid, r, arg_d.get("adminPass"))})
        elif name == "unrescue":
            a.unrescue(c, sid, r)
        elif name == "changePassword":
            if not isinstance(arg_d.get("adminPass"), str):
                raise errors.BadRequest("Invalid input for field/attribute adminPass.")
            a.change_password(c, sid, r, arg_d["adminPass"])
        elif name == "os-resetState":
            a.reset_state(c, sid, r, str(arg_d.get("state")))
        elif name == "resetNetwork":
            a.reset_network(c, sid, r)
        elif name == "createImage":
            if not isinstance(arg_d.get("name"), str) or not arg_d["name"].strip():
                raise errors.BadRequest("Invalid input for field/attribute name.")
            image_id = life.create_image(c, sid, r, arg_d["name"], arg_d.get("metadata") or {})
            loc = f"{base(request).rsplit('/v2.1', 1)[0]}/images/{image_id}"
            if v >= views.V(2, 45):
                return json_response({"image_id": image_id}, status=202)
            return empty(202, headers={"Location": loc})
        elif name == "rebuild":
            if not isinstance(arg_d.get("imageRef"), str):
                raise errors.BadRequest("Invalid input for field/attribute imageRef.")
            password = life.rebuild(c, sid, r, arg_d)
            inst = self.svc.servers.get(c, sid)
            out = views.server(inst, base(request), v, c, self.svc.allowed(c, "os_compute_api:os-extended-server-attributes"))
            out = views.basic_before_275(out, v)
            out["adminPass"] = password
            return json_response({"server": out}, status=202)
        elif name == "resize":
            if "flavorRef" not in arg_d:
                raise errors.BadRequest("Invalid input for field/attribute flavorRef.")
            life.resize(c, sid, r, str(arg_d["flavorRef"]).rstrip("/").rsplit("/", 1)[-1])
        elif name == "confirmResize":
            life.confirm_resize(c, sid, r)
            return empty(204)
        elif name == "revertResize":
            life.revert_resize(c, sid, r)
        elif name == "shelve":
            life.shelve(c, sid, r)
        elif name == "shelveOffload":
            pass  # shelve already offloads (Nova's shelved_offload_time = 0)
        elif name == "unshelve":
            life.unshelve(c, sid, r, arg_d.get("availability_zone"))
        elif name == "migrate":
            life.migrate(c, sid, r, arg_d.get("host"))
        elif name == "os-migrateLive":
            life.live_migrate(c, sid, r, arg_d.get("host"))
        elif name == "evacuate":
            password = life.evacuate(c, sid, r, arg_d.get("host"), arg_d.get("adminPass"))
            return json_response({"adminPass": password} if v < views.V(2, 14) else {}, status=200)
        elif name == "os-getConsoleOutput":
            return json_response({"output": self.svc.subres.console_output(c, sid, arg_d.get("length"))})
        elif name in ("addSecurityGroup", "removeSecurityGroup"):
            if not isinstance(arg_d.get("name"), str):
                raise errors.BadRequest("Invalid input for field/attribute name.")
            self.svc.subres.security_group(c, sid, r, arg_d["name"], add=name == "addSecurityGroup")
        elif name == "forceDelete":
            await self.svc.servers.delete(c, sid, r, force=True)
        elif name == "restore":
            raise errors.Conflict("Soft delete is off (reclaim_instance_interval = 0): nothing to restore.")
        elif name in consoles.LEGACY_ACTIONS:
            return await consoles.legacy_action(self.svc, request, name, arg)
        else:
            raise errors.BadRequest(f"There is no such action: {name}")
        return empty(202)
