"""Generic volume groups: ``/group_types`` and their ``group_specs`` (3.11), ``/groups`` and their actions (3.13,
create-from-src 3.14, reset_status 3.20), ``/group_snapshots`` (3.14, reset_status 3.19). Below its microversion a
route answers 404, as Cinder's do."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, Version, ctx, empty, json_response, read_json, validate, version
from tinystack.volume import group_schemas, views
from tinystack.volume.api.attachments import since
from tinystack.volume.api.common import both, next_links, query
from tinystack.volume.schemas import truthy
from tinystack.volume.service import VolumeService

GROUP_TYPES = Version(3, 11)
GROUPS = Version(3, 13)
GROUP_SNAPSHOTS = Version(3, 14)  # also create-from-src
GROUP_SNAPSHOT_RESET = Version(3, 19)
GROUP_RESET = Version(3, 20)
GROUP_VOLUMES = Version(3, 25)  # list_volume on show and detail


def one_action(body: Any, schemas: dict[str, dict[str, Any]], what: str) -> tuple[str, Any]:
    if not isinstance(body, dict) or len(body) != 1:
        raise errors.BadRequest("Invalid request body: exactly one action is expected.")
    name, args = next(iter(body.items()))
    if name not in schemas:
        raise errors.BadRequest(f"Invalid request body: unknown {what} action {name!r}.")
    validate(args, schemas[name])
    return name, args


class GroupTypesAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        t, specs = "/group_types/{group_type_id}", "/group_types/{group_type_id}/group_specs"
        return [*both("GET", "/group_types", self.index), *both("POST", "/group_types", self.create),
                *both("GET", t, self.show), *both("PUT", t, self.update), *both("DELETE", t, self.delete),
                *both("GET", specs, self.specs), *both("POST", specs, self.specs_set),
                *both("GET", f"{specs}/{{key}}", self.spec), *both("PUT", f"{specs}/{{key}}", self.spec_set),
                *both("DELETE", f"{specs}/{{key}}", self.spec_delete)]

    def _show_specs(self, request: web.Request) -> bool:
        return self.svc.allowed(ctx(request), "group:access_group_types_specs")

    async def index(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        show_specs = self._show_specs(request)
        rows, more = await self.svc.call(self.svc.group_types.list, ctx(request), query(request))
        out: dict[str, Any] = {"group_types": [views.group_type(t, show_specs=show_specs) for t in rows]}
        out.update(next_links(request, "group_types", rows[-1].id if rows else None, more))
        return json_response(out)

    async def show(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        show_specs = self._show_specs(request)
        t = await self.svc.call(self.svc.group_types.get, ctx(request), request.match_info["group_type_id"])
        return json_response({"group_type": views.group_type(t, show_specs=show_specs)})

    async def create(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        body = (await read_json(request, group_schemas.GROUP_TYPE_CREATE))["group_type"]
        t = await self.svc.call(self.svc.group_types.create, ctx(request), body)
        return json_response({"group_type": views.group_type(t, show_specs=True)}, status=202)

    async def update(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        body = (await read_json(request, group_schemas.GROUP_TYPE_UPDATE))["group_type"]
        t = await self.svc.call(self.svc.group_types.update, ctx(request), request.match_info["group_type_id"], body)
        return json_response({"group_type": views.group_type(t, show_specs=True)})

    async def delete(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        await self.svc.call(self.svc.group_types.delete, ctx(request), request.match_info["group_type_id"])
        return empty(202)

    async def specs(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        specs = await self.svc.call(self.svc.group_types.specs, ctx(request), request.match_info["group_type_id"])
        return json_response({"group_specs": specs})

    async def specs_set(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        specs = (await read_json(request, group_schemas.GROUP_SPECS_BODY))["group_specs"]
        await self.svc.call(self.svc.group_types.set_specs, ctx(request), request.match_info["group_type_id"], specs)
        return json_response({"group_specs": specs}, status=202)

    async def spec(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        tid, key = request.match_info["group_type_id"], request.match_info["key"]
        specs = await self.svc.call(self.svc.group_types.specs, ctx(request), tid)
        if key not in specs:
            raise errors.NotFound(f"Group Type {tid} has no extra spec with key {key}.")
        return json_response({key: specs[key]})

    async def spec_set(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        key = request.match_info["key"]
        body = await read_json(request, group_schemas.GROUP_SPEC_ITEM)
        if key not in body:
            raise errors.BadRequest("Request body and URI mismatch.")
        await self.svc.call(self.svc.group_types.set_specs, ctx(request), request.match_info["group_type_id"], body)
        return json_response(body)

    async def spec_delete(self, request: web.Request) -> web.Response:
        since(request, GROUP_TYPES)
        await self.svc.call(self.svc.group_types.delete_spec, ctx(request), request.match_info["group_type_id"],
                            request.match_info["key"])
        return empty(202)


class GroupsAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        g = "/groups/{group_id}"
        return [*both("GET", "/groups", self.index), *both("GET", "/groups/detail", self.detail),
                *both("POST", "/groups", self.create), *both("POST", "/groups/action", self.collection_action),
                *both("GET", g, self.show), *both("PUT", g, self.update), *both("POST", f"{g}/action", self.action)]

    def _with_volumes(self, request: web.Request) -> bool:
        return version(request) >= GROUP_VOLUMES and truthy(request.query.get("list_volume", "false"))

    async def index(self, request: web.Request) -> web.Response:
        since(request, GROUPS)
        rows, _, more = await self.svc.call(self.svc.groups.list, ctx(request), query(request))
        out: dict[str, Any] = {"groups": [views.group_summary(g) for g in rows]}
        out.update(next_links(request, "groups", rows[-1].id if rows else None, more))
        return json_response(out)

    async def detail(self, request: web.Request) -> web.Response:
        since(request, GROUPS)
        rows, members, more = await self.svc.call(self.svc.groups.list, ctx(request), query(request))
        v, with_volumes = version(request), self._with_volumes(request)
        out: dict[str, Any] = {"groups": [views.group(g, v, members[g.id] if with_volumes else None) for g in rows]}
        out.update(next_links(request, "groups", rows[-1].id if rows else None, more))
        return json_response(out)

    async def show(self, request: web.Request) -> web.Response:
        since(request, GROUPS)
        g, members = await self.svc.call(self.svc.groups.get, ctx(request), request.match_info["group_id"])
        return json_response({"group": views.group(g, version(request),
                                                   members if self._with_volumes(request) else None)})

    async def create(self, request: web.Request) -> web.Response:
        since(request, GROUPS)
        body = (await read_json(request, group_schemas.GROUP_CREATE))["group"]
        g = await self.svc.call(self.svc.groups.create, ctx(request), body)
        return json_response({"group": views.group_summary(g)}, status=202)

    async def collection_action(self, request: web.Request) -> web.Response:
        """``create-from-src`` (3.14), the one action on the collection."""
        since(request, GROUP_SNAPSHOTS)
        body = (await read_json(request, group_schemas.GROUP_FROM_SRC))["create-from-src"]
        g = await self.svc.call(self.svc.groups.create_from_src, ctx(request), body)
        return json_response({"group": views.group_summary(g)}, status=202)

    async def update(self, request: web.Request) -> web.Response:
        since(request, GROUPS)
        body = (await read_json(request, group_schemas.GROUP_UPDATE))["group"]
        await self.svc.call(self.svc.groups.update, ctx(request), request.match_info["group_id"], body)
        return empty(202)

    async def action(self, request: web.Request) -> web.Response:
        since(request, GROUPS)
        name, args = one_action(await read_json(request), group_schemas.GROUP_ACTIONS, "group")
        gid = request.match_info["group_id"]
        if name == "delete":
            await self.svc.call(self.svc.groups.delete, ctx(request), gid, truthy(args.get("delete-volumes", False)))
        else:
            since(request, GROUP_RESET)
            await self.svc.call(self.svc.groups.reset_status, ctx(request), gid, args["status"])
        return empty(202)


class GroupSnapshotsAPI:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        gs = "/group_snapshots/{group_snapshot_id}"
        return [*both("GET", "/group_snapshots", self.index), *both("GET", "/group_snapshots/detail", self.detail),
                *both("POST", "/group_snapshots", self.create), *both("GET", gs, self.show),
                *both("DELETE", gs, self.delete), *both("POST", f"{gs}/action", self.action)]

    async def _list(self, request: web.Request, detail: bool) -> web.Response:
        since(request, GROUP_SNAPSHOTS)
        rows, more = await self.svc.call(self.svc.group_snapshots.list, ctx(request), query(request))
        v = version(request)
        out: dict[str, Any] = {"group_snapshots": [views.group_snapshot(r, v, detail=detail) for r in rows]}
        out.update(next_links(request, "group_snapshots", rows[-1].id if rows else None, more))
        return json_response(out)

    async def index(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=False)

    async def detail(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=True)

    async def show(self, request: web.Request) -> web.Response:
        since(request, GROUP_SNAPSHOTS)
        gs = await self.svc.call(self.svc.group_snapshots.get, ctx(request), request.match_info["group_snapshot_id"])
        return json_response({"group_snapshot": views.group_snapshot(gs, version(request), detail=True)})

    async def create(self, request: web.Request) -> web.Response:
        since(request, GROUP_SNAPSHOTS)
        body = (await read_json(request, group_schemas.GROUP_SNAPSHOT_CREATE))["group_snapshot"]
        gs = await self.svc.call(self.svc.group_snapshots.create, ctx(request), body)
        return json_response({"group_snapshot": views.group_snapshot(gs, version(request), detail=False)},
                             status=202)

    async def delete(self, request: web.Request) -> web.Response:
        since(request, GROUP_SNAPSHOTS)
        await self.svc.call(self.svc.group_snapshots.delete, ctx(request), request.match_info["group_snapshot_id"])
        return empty(202)

    async def action(self, request: web.Request) -> web.Response:
        since(request, GROUP_SNAPSHOT_RESET)
        _, args = one_action(await read_json(request), group_schemas.GROUP_SNAPSHOT_ACTIONS, "group snapshot")
        await self.svc.call(self.svc.group_snapshots.reset_status, ctx(request),
                            request.match_info["group_snapshot_id"], args["status"])
        return empty(202)
