"""``/volumes``: create, list (summary and detail), show, update, delete, metadata and actions. The rules run
off the event loop (``ServiceBase.call``/``read``); handlers parse, await them and render."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json, validate, version
from tinystack.volume import schemas, views
from tinystack.volume.api import metadata
from tinystack.volume.api.common import base, both, next_links, query
from tinystack.volume.models import Attachment, Volume, VolumeType
from tinystack.volume.service import VolumeService
from tinystack.volume.volumes import parse_size

V = views.V


class VolumesAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [*both("GET", "/volumes", self.index), *both("GET", "/volumes/detail", self.detail),
                *both("GET", "/volumes/summary", self.summary),
                *both("POST", "/volumes", self.create), *both("GET", "/volumes/{volume_id}", self.show),
                *both("PUT", "/volumes/{volume_id}", self.update), *both("DELETE", "/volumes/{volume_id}", self.delete),
                *both("POST", "/volumes/{volume_id}/action", self.action),
                *metadata.routes(self.svc, "volumes", "volume_id", self.svc.volumes.metadata)]

    async def render(self, request: web.Request, vols: list[Volume], atts: dict[str, list[Attachment]], *,
                     extended: bool) -> list[dict[str, Any]]:
        """The volumes' views; their types are looked up in one transaction off the loop."""
        c = ctx(request)
        wanted = sorted({v.volume_type_id for v in vols if v.volume_type_id})
        types: dict[str, VolumeType] = {}
        if wanted:
            types = await self.svc.read(lambda s: {t: self.svc.types.resolve(s, c, t) for t in wanted})
        return [views.volume(v, atts.get(v.id, []), types.get(v.volume_type_id) if v.volume_type_id else None,
                             version(request), base=base(request), admin=c.is_admin, extended=extended,
                             backend=self.svc.settings.backend_name) for v in vols]

    async def render_one(self, request: web.Request, vol: Volume, *, extended: bool,
                         fresh: bool = False) -> dict[str, Any]:
        """One volume's view; ``fresh``: without attachments (just made)."""
        atts = {} if fresh else await self.svc.read(lambda s: self.svc.volumes.attachments(s, [vol.id]))
        return (await self.render(request, [vol], atts, extended=extended))[0]

    async def index(self, request: web.Request) -> web.Response:
        rows, _, more = await self.svc.call(self.svc.volumes.list, ctx(request), query(request))
        out: dict[str, Any] = {"volumes": [views.volume_summary(v, base(request)) for v in rows]}
        out.update(next_links(request, "volumes", rows[-1].id if rows else None, more))
        return json_response(out)

    async def detail(self, request: web.Request) -> web.Response:
        q = query(request)
        rows, atts, more = await self.svc.call(self.svc.volumes.list, ctx(request), q)
        out: dict[str, Any] = {"volumes": await self.render(request, rows, atts, extended=True)}
        out.update(next_links(request, "volumes", rows[-1].id if rows else None, more))
        if version(request) >= V(3, 45) and "with_count" in q:
            out["count"] = len(rows)
        return json_response(out)

    async def summary(self, request: web.Request) -> web.Response:
        if version(request) < V(3, 12):
            raise errors.NotFound("The resource could not be found.")
        q = {k: v for k, v in query(request).items() if k not in ("limit", "marker", "offset")}
        rows, _, _ = await self.svc.call(self.svc.volumes.list, ctx(request), q)
        out: dict[str, Any] = {"total_size": sum(v.size for v in rows), "total_count": len(rows)}
        if version(request) >= V(3, 36):
            meta: dict[str, list[str]] = {}
            for v in rows:
                for k, val in (v.meta or {}).items():
                    meta.setdefault(k, []).append(val)
            out["metadata"] = meta
        return json_response({"volume-summary": out})

    async def show(self, request: web.Request) -> web.Response:
        vol = await self.svc.call(self.svc.volumes.get, ctx(request), request.match_info["volume_id"])
        return json_response({"volume": await self.render_one(request, vol, extended=True)})

    async def create(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.VOLUME_CREATE))["volume"]
        if version(request) < V(3, 13):
            body.pop("group_id", None)  # generic groups came with 3.13; below it the key is ignored, as in Cinder
        vol = await self.svc.call(self.svc.volumes.create, ctx(request), body)
        return json_response({"volume": await self.render_one(request, vol, extended=False, fresh=True)}, status=202)

    async def update(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.VOLUME_UPDATE))["volume"]
        if not body:
            raise errors.BadRequest("Missing required element 'volume' in request body: nothing to update.")
        vol = await self.svc.call(self.svc.volumes.update, ctx(request), request.match_info["volume_id"], body)
        return json_response({"volume": await self.render_one(request, vol, extended=False)})

    async def delete(self, request: web.Request) -> web.Response:
        cascade = request.query.get("cascade", "false").lower() in ("true", "1", "yes")
        force = request.query.get("force", "false").lower() in ("true", "1", "yes")
        await self.svc.call(self.svc.volumes.delete, ctx(request), request.match_info["volume_id"], force=force,
                            cascade=cascade)
        return empty(202)

    # --- actions --------------------------------------------------------------------------------

    async def action(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Invalid request body: exactly one action is expected.")
        name, args = next(iter(body.items()))
        c, vid = ctx(request), request.match_info["volume_id"]
        if name in schemas.ACTIONS:
            validate(args, schemas.ACTIONS[name])
        if name == "os-set_bootable":
            await self.svc.call(self.svc.volumes.set_bootable, c, vid, schemas.truthy(args["bootable"]))
            return empty(200)
        if name == "os-update_readonly_flag":
            await self.svc.call(self.svc.volumes.set_readonly, c, vid, schemas.truthy(args["readonly"]))
            return empty(202)
        if name == "os-extend":
            await self.svc.call(self.svc.volumes.extend, c, vid, parse_size(args["new_size"], "new_size"),
                                version(request) >= V(3, 42))
            return empty(202)
        if name == "os-reset_status":
            await self.svc.call(self.svc.volumes.reset_status, c, vid, args or {})
            return empty(202)
        if name == "os-force_delete":
            await self.svc.call(self.svc.volumes.delete, c, vid, force=True)
            return empty(202)
        if name == "os-volume_upload_image":
            out = await self.svc.call(self.svc.volumes.upload, c, vid, args)
            out["updated_at"] = views.when(out["updated_at"])
            return json_response({"os-volume_upload_image": out}, status=202)
        if name in ("os-reserve", "os-unreserve", "os-attach", "os-detach", "os-begin_detaching",
                    "os-roll_detaching"):
            await self.svc.call(self.svc.attachments.legacy, c, vid, name, args if isinstance(args, dict) else {})
            return empty(202)
        if name == "os-initialize_connection":
            info = await self.svc.call(self.svc.attachment_records.initialize_connection, c, vid, args["connector"])
            return json_response({"connection_info": info})
        if name == "os-terminate_connection":
            await self.svc.call(self.svc.attachment_records.terminate_connection, c, vid, args["connector"])
            return empty(202)
        if name == "os-retype":
            await self.svc.call(self.svc.retyping.retype, c, vid, args["new_type"], args.get("migration_policy"))
            return empty(202)
        if name == "os-migrate_volume":
            await self.svc.call(self.svc.retyping.migrate, c, vid, args.get("host"), args.get("cluster"),
                                schemas.truthy(args.get("force_host_copy", False)),
                                schemas.truthy(args.get("lock_volume", False)))
            return empty(202)
        if name == "os-migrate_volume_completion":
            await self.svc.call(self.svc.retyping.migrate_completion, c, vid, args["new_volume"])
            return empty(200)
        if name in ("os-reimage", "os-unmanage"):
            raise errors.NotImplementedYet(f"The volume action {name} is not supported by this cloud.")
        raise errors.BadRequest(f"Invalid request body: unknown volume action {name!r}.")
