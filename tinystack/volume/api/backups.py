"""``/backups``: create, list (summary and detail), show, update, delete, restore, admin actions, and the export
and import of backup records."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json, validate, version
from tinystack.volume import schemas, views
from tinystack.volume.api.common import base, both, next_links, query
from tinystack.volume.service import VolumeService

V = views.V


class BackupsAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [*both("GET", "/backups", self.index), *both("GET", "/backups/detail", self.detail),
                *both("POST", "/backups", self.create),
                *both("POST", "/backups/import_record", self.import_record),
                *both("GET", "/backups/{backup_id}", self.show), *both("PUT", "/backups/{backup_id}", self.update),
                *both("DELETE", "/backups/{backup_id}", self.delete),
                *both("POST", "/backups/{backup_id}/restore", self.restore),
                *both("POST", "/backups/{backup_id}/action", self.action),
                *both("GET", "/backups/{backup_id}/export_record", self.export_record)]

    async def _list(self, request: web.Request, detail: bool) -> web.Response:
        q = query(request)
        rows, parents, more = await self.svc.call(self.svc.backups.list, ctx(request), q)
        v, c = version(request), ctx(request)
        out: dict[str, Any] = {"backups": [
            views.backup(r, v, base=base(request), dependents=r.id in parents,
                         admin=self.svc.allowed(c, "backup:backup_project_attribute")) if detail
            else views.backup_summary(r, base(request)) for r in rows]}
        out.update(next_links(request, "backups", rows[-1].id if rows else None, more))
        if v >= V(3, 45) and "with_count" in q:
            out["count"] = len(rows)
        return json_response(out)

    async def index(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=False)

    async def detail(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=True)

    async def _one(self, request: web.Request, backup_id: str) -> dict[str, Any]:
        row = await self.svc.call(self.svc.backups.get, ctx(request), backup_id)
        dependents = await self.svc.call(self.svc.backups.has_dependents, row.id)
        return views.backup(row, version(request), base=base(request), dependents=dependents,
                            admin=self.svc.allowed(ctx(request), "backup:backup_project_attribute"))

    async def show(self, request: web.Request) -> web.Response:
        return json_response({"backup": await self._one(request, request.match_info["backup_id"])})

    async def create(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.BACKUP_CREATE))["backup"]
        v = version(request)
        if body.get("metadata") is not None and v < V(3, 43):
            raise errors.BadRequest("Invalid input received: metadata needs microversion 3.43 or later.")
        if body.get("availability_zone") is not None and v < V(3, 51):
            raise errors.BadRequest("Invalid input received: availability_zone needs microversion 3.51 or later.")
        row = await self.svc.call(self.svc.backups.create, ctx(request), body)
        out = views.backup_summary(row, base(request))
        if v >= V(3, 43):
            out["metadata"] = dict(row.meta or {})
        return json_response({"backup": out}, status=202)

    async def update(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.BACKUP_UPDATE))["backup"]
        if "metadata" in body and version(request) < V(3, 43):
            raise errors.BadRequest("Invalid input received: metadata needs microversion 3.43 or later.")
        row = await self.svc.call(self.svc.backups.update, ctx(request), request.match_info["backup_id"], body)
        return json_response({"backup": views.backup_summary(row, base(request))})

    async def delete(self, request: web.Request) -> web.Response:
        await self.svc.call(self.svc.backups.delete, ctx(request), request.match_info["backup_id"])
        return empty(202)

    async def restore(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.BACKUP_RESTORE))["restore"] or {}
        if body.get("name") is not None and version(request) < V(3, 47):
            body = {k: v for k, v in body.items() if k != "name"}  # before 3.47 Cinder names the volume itself
        out = await self.svc.call(self.svc.backups.restore, ctx(request), request.match_info["backup_id"], body)
        return json_response({"restore": out}, status=202)

    async def action(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise errors.BadRequest("Invalid request body: exactly one action is expected.")
        name, args = next(iter(body.items()))
        if name not in schemas.BACKUP_ACTIONS:
            raise errors.BadRequest(f"Invalid request body: unknown backup action {name!r}.")
        validate(args, schemas.BACKUP_ACTIONS[name])
        bid = request.match_info["backup_id"]
        if name == "os-reset_status":
            await self.svc.call(self.svc.backups.reset_status, ctx(request), bid, args["status"])
        else:
            await self.svc.call(self.svc.backups.delete, ctx(request), bid, force=True)
        return empty(202)

    async def export_record(self, request: web.Request) -> web.Response:
        record = await self.svc.call(self.svc.backup_records.export, ctx(request), request.match_info["backup_id"])
        return json_response({"backup-record": record})

    async def import_record(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.BACKUP_IMPORT))["backup-record"]
        row = await self.svc.call(self.svc.backup_records.import_, ctx(request), body["backup_service"],
                                  body["backup_url"])
        return json_response({"backup": views.backup_summary(row, base(request))}, status=201)
