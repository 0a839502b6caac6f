"""``/v2/metadefs``: the metadata definitions catalog (namespaces, objects, properties, tags, resource types)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.image import metadef_schemas
from tinystack.image import metadef_views as mv
from tinystack.image.metadefs import KINDS
from tinystack.image.service import ImageService

NS = "/v2/metadefs/namespaces/{namespace}"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _bind(fn: Callable[[web.Request, str], Awaitable[web.Response]], kind: str) -> Handler:
    """A handler for one kind of namespace content (objects, properties, tags), which share their code."""
    async def handler(request: web.Request) -> web.Response:
        return await fn(request, kind)

    return handler


class MetadefsAPI:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc
        self.md = svc.metadefs

    def routes(self) -> list[Route]:
        out = [
            Route("GET", "/v2/metadefs/namespaces", self.list_namespaces),
            Route("POST", "/v2/metadefs/namespaces", self.create_namespace),
            Route("GET", NS, self.show_namespace),
            Route("PUT", NS, self.update_namespace),
            Route("DELETE", NS, self.delete_namespace),
            Route("GET", NS + "/resource_types", self.list_associations),
            Route("POST", NS + "/resource_types", self.associate),
            Route("DELETE", NS + "/resource_types/{name}", self.dissociate),
            Route("POST", NS + "/tags/{name}", self.create_tag),
            Route("GET", "/v2/metadefs/resource_types", self.resource_types),
            Route("GET", "/v2/schemas/metadefs/{name}", self.schema),
        ]
        for kind in KINDS:
            out += [Route("GET", f"{NS}/{kind}", _bind(self.list_items, kind)),
                    Route("POST", f"{NS}/{kind}", _bind(self.create_items, kind)),
                    Route("DELETE", f"{NS}/{kind}", _bind(self.delete_items, kind)),
                    Route("GET", f"{NS}/{kind}/{{name}}", _bind(self.show_item, kind)),
                    Route("PUT", f"{NS}/{kind}/{{name}}", _bind(self.update_item, kind)),
                    Route("DELETE", f"{NS}/{kind}/{{name}}", _bind(self.delete_item, kind))]
        return out

    def _render(self, ns_name: str, kind: str, item: object) -> dict[str, object]:
        if kind == "objects":
            return mv.obj(ns_name, item)  # type: ignore[arg-type]
        return mv.prop(item) if kind == "properties" else mv.tag(item)  # type: ignore[arg-type]

    async def list_namespaces(self, request: web.Request) -> web.Response:
        rows, next_marker = self.md.list_namespaces(ctx(request), request.query)
        return json_response(mv.namespaces(rows, list(request.query.items()), next_marker))

    async def create_namespace(self, request: web.Request) -> web.Response:
        ns = await self.md.create_namespace(ctx(request), await read_json(request))
        return json_response(mv.namespace(ns, detail=True), status=201)

    async def show_namespace(self, request: web.Request) -> web.Response:
        return json_response(mv.namespace(self.md.get_namespace(ctx(request), request.match_info["namespace"]),
                                          detail=True))

    async def update_namespace(self, request: web.Request) -> web.Response:
        ns = await self.md.update_namespace(ctx(request), request.match_info["namespace"], await read_json(request))
        return json_response(mv.namespace(ns))

    async def delete_namespace(self, request: web.Request) -> web.Response:
        await self.md.delete_namespace(ctx(request), request.match_info["namespace"])
        return empty()

    async def list_items(self, request: web.Request, kind: str) -> web.Response:
        ns_name = request.match_info["namespace"]
        items = self.md.list_items(ctx(request), ns_name, KINDS[kind])
        if kind == "objects":
            return json_response(mv.objects(ns_name, items))
        return json_response(mv.properties(items) if kind == "properties" else mv.tags(items))

    async def create_items(self, request: web.Request, kind: str) -> web.Response:
        c, ns_name = ctx(request), request.match_info["namespace"]
        body = await read_json(request)
        if kind == "tags":
            append = request.headers.get("X-OpenStack-Append", "false").strip().lower() == "true"
            return json_response(mv.tags(await self.md.set_tags(c, ns_name, body, append)), status=201)
        item = await self.md.create_item(c, ns_name, KINDS[kind], body)
        return json_response(self._render(ns_name, kind, item), status=201)

    async def delete_items(self, request: web.Request, kind: str) -> web.Response:
        await self.md.delete_items(ctx(request), request.match_info["namespace"], KINDS[kind])
        return empty()

    async def show_item(self, request: web.Request, kind: str) -> web.Response:
        ns_name = request.match_info["namespace"]
        item = self.md.get_item(ctx(request), ns_name, KINDS[kind], request.match_info["name"])
        return json_response(self._render(ns_name, kind, item))

    async def update_item(self, request: web.Request, kind: str) -> web.Response:
        ns_name = request.match_info["namespace"]
        item = await self.md.update_item(ctx(request), ns_name, KINDS[kind], request.match_info["name"],
                                         await read_json(request))
        return json_response(self._render(ns_name, kind, item))

    async def delete_item(self, request: web.Request, kind: str) -> web.Response:
        await self.md.delete_item(ctx(request), request.match_info["namespace"], KINDS[kind],
                                  request.match_info["name"])
        return empty()

    async def create_tag(self, request: web.Request) -> web.Response:
        item = await self.md.create_item(ctx(request), request.match_info["namespace"], "tag",
                                         {"name": request.match_info["name"]})
        return json_response(mv.tag(item), status=201)

    async def list_associations(self, request: web.Request) -> web.Response:
        return json_response(mv.associations(self.md.associations(ctx(request), request.match_info["namespace"])))

    async def associate(self, request: web.Request) -> web.Response:
        assoc = await self.md.associate(ctx(request), request.match_info["namespace"], await read_json(request))
        return json_response(mv.association(assoc), status=201)

    async def dissociate(self, request: web.Request) -> web.Response:
        await self.md.dissociate(ctx(request), request.match_info["namespace"], request.match_info["name"])
        return empty()

    async def resource_types(self, request: web.Request) -> web.Response:
        return json_response(mv.resource_types(self.md.resource_types(ctx(request))))

    async def schema(self, request: web.Request) -> web.Response:
        doc = metadef_schemas.documents().get(request.match_info["name"])
        if doc is None:
            raise errors.NotFound("The resource could not be found.")
        return json_response(doc)
