"""Server sub-resources: metadata, tags, os-instance-actions, os-interface, diagnostics; os-server-groups."""

from __future__ import annotations

from aiohttp import web

from tinystack.compute import schemas, views
from tinystack.compute.api.common import mid, rid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json, version

S = "/v2.1/servers/{server_id}"


class SubAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("GET", f"{S}/metadata", self.meta), Route("POST", f"{S}/metadata", self.meta_merge),
            Route("PUT", f"{S}/metadata", self.meta_replace), Route("GET", f"{S}/metadata/{{key}}", self.meta_item),
            Route("PUT", f"{S}/metadata/{{key}}", self.meta_put), Route("DELETE", f"{S}/metadata/{{key}}", self.meta_del),
            Route("GET", f"{S}/tags", self.tags), Route("PUT", f"{S}/tags", self.tags_replace),
            Route("DELETE", f"{S}/tags", self.tags_clear), Route("GET", f"{S}/tags/{{tag}}", self.tag_check),
            Route("PUT", f"{S}/tags/{{tag}}", self.tag_add), Route("DELETE", f"{S}/tags/{{tag}}", self.tag_del),
            Route("GET", f"{S}/os-instance-actions", self.actions),
            Route("GET", f"{S}/os-instance-actions/{{request_id}}", self.action),
            Route("GET", f"{S}/os-interface", self.ifaces), Route("POST", f"{S}/os-interface", self.iface_add),
            Route("GET", f"{S}/os-interface/{{port_id}}", self.iface),
            Route("DELETE", f"{S}/os-interface/{{port_id}}", self.iface_del),
            Route("GET", f"{S}/diagnostics", self.diagnostics),
            Route("GET", "/v2.1/os-server-groups", self.groups), Route("POST", "/v2.1/os-server-groups", self.group_add),
            Route("GET", "/v2.1/os-server-groups/{group_id}", self.group),
            Route("DELETE", "/v2.1/os-server-groups/{group_id}", self.group_del),
        ]

    # metadata
    async def meta(self, request: web.Request) -> web.Response:
        return json_response({"metadata": self.svc.servers.get(ctx(request), mid(request, "server_id")).meta})

    async def _meta_body(self, request: web.Request) -> dict[str, str]:
        return (await read_json(request, {"type": "object", "required": ["metadata"],
                                          "properties": {"metadata": schemas.METADATA}}))["metadata"]  # type: ignore[no-any-return]

    async def meta_merge(self, request: web.Request) -> web.Response:
        out = self.svc.subres.set_metadata(ctx(request), mid(request, "server_id"), await self._meta_body(request), False)
        return json_response({"metadata": out})

    async def meta_replace(self, request: web.Request) -> web.Response:
        out = self.svc.subres.set_metadata(ctx(request), mid(request, "server_id"), await self._meta_body(request), True)
        return json_response({"metadata": out})

    async def meta_item(self, request: web.Request) -> web.Response:
        meta = self.svc.servers.get(ctx(request), mid(request, "server_id")).meta
        key = mid(request, "key")
        if key not in meta:
            raise errors.NotFound("Metadata item was not found")
        return json_response({"meta": {key: meta[key]}})

    async def meta_put(self, request: web.Request) -> web.Response:
        body = await read_json(request, {"type": "object", "required": ["meta"], "properties": {
            "meta": {**schemas.METADATA, "minProperties": 1, "maxProperties": 1}}})
        key = mid(request, "key")
        if key not in body["meta"]:
            raise errors.BadRequest("Request body and URI mismatch")
        self.svc.subres.set_metadata(ctx(request), mid(request, "server_id"), body["meta"], False)
        return json_response({"meta": body["meta"]})

    async def meta_del(self, request: web.Request) -> web.Response:
        self.svc.subres.delete_metadata(ctx(request), mid(request, "server_id"), mid(request, "key"))
        return empty(204)

    # tags
    async def tags(self, request: web.Request) -> web.Response:
        return json_response({"tags": self.svc.servers.get(ctx(request), mid(request, "server_id")).tags})

    async def tags_replace(self, request: web.Request) -> web.Response:
        body = await read_json(request, {"type": "object", "required": ["tags"],
                                         "properties": {"tags": {"type": "array", "items": {"type": "string"}}}})
        return json_response({"tags": self.svc.subres.set_tags(ctx(request), mid(request, "server_id"),
                                                               body["tags"], True)})

    async def tags_clear(self, request: web.Request) -> web.Response:
        self.svc.subres.delete_tag(ctx(request), mid(request, "server_id"), None)
        return empty(204)

    async def tag_check(self, request: web.Request) -> web.Response:
        if mid(request, "tag") not in self.svc.servers.get(ctx(request), mid(request, "server_id")).tags:
            raise errors.NotFound(f"Tag {mid(request, 'tag')} could not be found.")
        return empty(204)

    async def tag_add(self, request: web.Request) -> web.Response:
        tag = mid(request, "tag")
        existed = tag in self.svc.servers.get(ctx(request), mid(request, "server_id")).tags
        self.svc.subres.set_tags(ctx(request), mid(request, "server_id"), [tag], False)
        return empty(204 if existed else 201)

    async def tag_del(self, request: web.Request) -> web.Response:
        self.svc.subres.delete_tag(ctx(request), mid(request, "server_id"), mid(request, "tag"))
        return empty(204)

    # instance actions
    async def actions(self, request: web.Request) -> web.Response:
        rows = self.svc.actions.list_actions(ctx(request), mid(request, "server_id"))
        return json_response({"instanceActions": [views.action(a, version(request), False, False) for a in rows]})

    async def action(self, request: web.Request) -> web.Response:
        c = ctx(request)
        a = self.svc.actions.get_action(c, mid(request, "server_id"), mid(request, "request_id"))
        details = self.svc.allowed(c, "os_compute_api:os-instance-actions:events")
        return json_response({"instanceAction": views.action(a, version(request), True, details)})

    # interfaces
    async def ifaces(self, request: web.Request) -> web.Response:
        return json_response({"interfaceAttachments": self.svc.subres.interfaces(ctx(request), mid(request, "server_id"))})

    async def iface(self, request: web.Request) -> web.Response:
        for i in self.svc.subres.interfaces(ctx(request), mid(request, "server_id")):
            if i["port_id"] == mid(request, "port_id"):
                return json_response({"interfaceAttachment": i})
        raise errors.NotFound(f"Port {mid(request, 'port_id')} is not attached")

    async def iface_add(self, request: web.Request) -> web.Response:
        body = await read_json(request, {"type": "object", "required": ["interfaceAttachment"],
                                         "properties": {"interfaceAttachment": {"type": "object"}}})
        out = self.svc.subres.attach_interface(ctx(request), mid(request, "server_id"), rid(request),
                                               body["interfaceAttachment"])
        return json_response({"interfaceAttachment": out})

    async def iface_del(self, request: web.Request) -> web.Response:
        self.svc.subres.detach_interface(ctx(request), mid(request, "server_id"), rid(request), mid(request, "port_id"))
        return empty(202)

    async def diagnostics(self, request: web.Request) -> web.Response:
        return json_response(self.svc.subres.diagnostics(ctx(request), mid(request, "server_id")))

    # server groups
    @staticmethod
    def _group(g: object, v: views.Version) -> dict[str, object]:
        out: dict[str, object] = {"id": g.id, "name": g.name, "members": list(g.members),  # type: ignore[attr-defined]
                                  "metadata": {}}
        if v >= views.V(2, 64):
            out.update({"policy": g.policy, "rules": g.rules})  # type: ignore[attr-defined]
            out.pop("metadata")
        else:
            out["policies"] = [g.policy]  # type: ignore[attr-defined]
        if v >= views.V(2, 13):
            out.update({"project_id": g.project_id, "user_id": g.user_id})  # type: ignore[attr-defined]
        return out

    async def groups(self, request: web.Request) -> web.Response:
        rows = self.svc.subres.groups(ctx(request), "all_projects" in request.query)
        return json_response({"server_groups": [self._group(g, version(request)) for g in rows]})

    async def group(self, request: web.Request) -> web.Response:
        return json_response({"server_group": self._group(self.svc.subres.group(ctx(request), mid(request, "group_id")),
                                                          version(request))})

    async def group_add(self, request: web.Request) -> web.Response:
        body = (await read_json(request, {"type": "object", "required": ["server_group"], "properties": {
            "server_group": {"type": "object", "required": ["name"], "properties": {"name": schemas.NAME}}}}))["server_group"]
        policy = body.get("policy") or (body.get("policies") or [None])[0]
        if not isinstance(policy, str):
            raise errors.BadRequest("Invalid input for field/attribute server_group: a policy is required")
        g = self.svc.subres.create_group(ctx(request), body["name"], policy, body.get("rules") or {})
        return json_response({"server_group": self._group(g, version(request))})

    async def group_del(self, request: web.Request) -> web.Response:
        self.svc.subres.delete_group(ctx(request), mid(request, "group_id"))
        return empty(204)
