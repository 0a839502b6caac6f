"""``/servers/{id}/os-volume_attachments``: list, attach, show, update (2.85) and detach, with Nova's bodies."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.compute.api.common import mid, rid
from tinystack.compute.models import BlockDeviceMapping
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, Version, ctx, empty, json_response, read_json, version

S = "/v2.1/servers/{server_id}/os-volume_attachments"
V = Version
UUID_PATTERN = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
# Nova's block_device.match_device.
DEVICE = {"type": ["string", "null"], "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"}
TAG = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}
BOOL = {"type": ["boolean", "string"], "enum": [True, False, "true", "false", "True", "False", "1", "0"]}


def _body_schema(v: Version, update: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"volumeId": {"type": "string", "pattern": UUID_PATTERN}, "device": DEVICE}
    if v >= V(2, 49) and not update:
        props["tag"] = TAG
    if v >= V(2, 79) and not update:
        props["delete_on_termination"] = BOOL
    if update and v >= V(2, 85):
        props.update({"delete_on_termination": BOOL, "tag": TAG, "id": {"type": "string"},
                      "serverId": {"type": "string"}, "device": DEVICE})
    return {"type": "object", "required": ["volumeAttachment"], "additionalProperties": False, "properties": {
        "volumeAttachment": {"type": "object", "required": ["volumeId"], "additionalProperties": False,
                             "properties": props}}}


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def attachment_view(b: BlockDeviceMapping, v: Version) -> dict[str, Any]:
    """Show and list (``_translate_attachment_detail_view``): ``id`` until 2.88, then the attachment ids."""
    out: dict[str, Any] = {}
    if v < V(2, 89):
        out["id"] = b.volume_id
    out.update({"volumeId": b.volume_id, "serverId": b.instance_uuid})
    if b.device_name:
        out["device"] = b.device_name
    if v >= V(2, 70):
        out["tag"] = b.tag
    if v >= V(2, 79):
        out["delete_on_termination"] = b.delete_on_termination
    if v >= V(2, 89):
        out.update({"attachment_id": b.attachment_id, "bdm_uuid": b.id})
    return out


class VolumeAttachmentsAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("GET", S, self.index), Route("POST", S, self.create),
                Route("GET", f"{S}/{{volume_id}}", self.show), Route("PUT", f"{S}/{{volume_id}}", self.update),
                Route("DELETE", f"{S}/{{volume_id}}", self.delete)]

    async def index(self, request: web.Request) -> web.Response:
        rows = self.svc.volumes.attachments(ctx(request), mid(request, "server_id"))
        offset, limit = _int(request, "offset"), _int(request, "limit")
        rows = rows[offset or 0:]
        if limit is not None:
            rows = rows[:min(limit, self.svc.settings.max_limit)]
        v = version(request)
        return json_response({"volumeAttachments": [attachment_view(b, v) for b in rows]})

    async def show(self, request: web.Request) -> web.Response:
        b = self.svc.volumes.get(ctx(request), mid(request, "server_id"), mid(request, "volume_id"))
        return json_response({"volumeAttachment": attachment_view(b, version(request))})

    async def create(self, request: web.Request) -> web.Response:
        v = version(request)
        body = (await read_json(request, _body_schema(v, update=False)))["volumeAttachment"]
        b = self.svc.volumes.attach(ctx(request), mid(request, "server_id"), rid(request), body["volumeId"],
                                    tag=body.get("tag"),
                                    delete_on_termination=_bool(body.get("delete_on_termination", False)))
        # Nova's attach answer keeps ``id`` at every microversion and never carries the attachment ids.
        out: dict[str, Any] = {"id": b.volume_id, "serverId": b.instance_uuid, "volumeId": b.volume_id,
                               "device": b.device_name}
        if v >= V(2, 70):
            out["tag"] = b.tag
        if v >= V(2, 79):
            out["delete_on_termination"] = b.delete_on_termination
        return json_response({"volumeAttachment": out})

    async def update(self, request: web.Request) -> web.Response:
        v = version(request)
        body = dict((await read_json(request, _body_schema(v, update=True)))["volumeAttachment"])
        if "delete_on_termination" in body:
            body["delete_on_termination"] = _bool(body["delete_on_termination"])
        self.svc.volumes.update(ctx(request), mid(request, "server_id"), mid(request, "volume_id"), body,
                                v >= V(2, 85))
        return empty(202)

    async def delete(self, request: web.Request) -> web.Response:
        self.svc.volumes.detach(ctx(request), mid(request, "server_id"), rid(request), mid(request, "volume_id"))
        return empty(202)


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"{name} param must be an integer") from None
    if value < 0:
        raise errors.BadRequest(f"{name} param must be positive")
    return value
