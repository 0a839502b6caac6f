"""The six metadata routes volumes and snapshots share (``/<kind>/{id}/metadata[/{key}]``)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.service import ServiceBase
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.volume import schemas
from tinystack.volume.api.common import both

Change = Callable[[dict[str, str]], dict[str, str]]
# The service call: (ctx, id, change or None) -> the metadata after the change.
Metadata = Callable[[RequestContext, str, Change | None], dict[str, str]]


def routes(svc: ServiceBase, kind: str, id_key: str, metadata: Metadata) -> list[Route]:
    async def call(request: web.Request, change: Change | None = None) -> dict[str, str]:
        return await svc.call(metadata, ctx(request), request.match_info[id_key], change)

    async def show(request: web.Request) -> web.Response:
        return json_response({"metadata": await call(request)})

    async def merge(request: web.Request) -> web.Response:
        new = (await read_json(request, schemas.METADATA_BODY))["metadata"]
        return json_response({"metadata": await call(request, lambda m: {**m, **new})})

    async def replace(request: web.Request) -> web.Response:
        new = (await read_json(request, schemas.METADATA_BODY))["metadata"]
        return json_response({"metadata": await call(request, lambda m: dict(new))})

    async def item(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        meta = await call(request)
        if key not in meta:
            raise errors.NotFound(f"Metadata item was not found: {key}.")
        return json_response({"meta": {key: meta[key]}})

    async def item_set(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        value = (await read_json(request, schemas.META_ITEM_BODY))["meta"]
        if key not in value:
            raise errors.BadRequest("Request body and URI mismatch.")
        await call(request, lambda m: {**m, key: value[key]})
        return json_response({"meta": {key: value[key]}})

    async def item_delete(request: web.Request) -> web.Response:
        key = request.match_info["key"]

        def drop(m: dict[str, str]) -> dict[str, str]:
            if key not in m:
                raise errors.NotFound(f"Metadata item was not found: {key}.")
            return {k: v for k, v in m.items() if k != key}

        await call(request, drop)
        return empty(200)

    path = f"/{kind}/{{{id_key}}}/metadata"
    return [*both("GET", path, show), *both("POST", path, merge), *both("PUT", path, replace),
            *both("GET", f"{path}/{{key}}", item), *both("PUT", f"{path}/{{key}}", item_set),
            *both("DELETE", f"{path}/{{key}}", item_delete)]
