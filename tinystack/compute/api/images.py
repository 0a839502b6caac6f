"""Nova's image proxy (``/images``, before microversion 2.36): the image service's images in Nova's shape."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.compute import views
from tinystack.compute.api.common import base, mid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, query_int, version
from tinystack.image.interface import IMAGE

V = "/v2.1/images"
_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING", "uploading": "SAVING",
           "deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR", "deactivated": "ERROR"}


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


class ImagesAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("GET", V, self.index), Route("GET", f"{V}/detail", self.detail),
                Route("GET", f"{V}/{{image_id}}", self.show), Route("DELETE", f"{V}/{{image_id}}", self.delete)]

    def _check_version(self, request: web.Request) -> None:
        if version(request) >= views.V(2, 36):
            raise errors.NotFound("The resource could not be found.")

    def _links(self, request: web.Request, image_id: str) -> list[dict[str, str]]:
        b = base(request)
        return [{"rel": "self", "href": f"{b}/images/{image_id}"},
                {"rel": "bookmark", "href": f"{b.replace('/v2.1', '')}/images/{image_id}"}]

    def _view(self, request: web.Request, image: Any, detail: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": image.id, "name": image.name, "links": self._links(request, image.id)}
        if detail:
            props = {p.name: p.value for p in image.properties}
            out.update({"minRam": image.min_ram, "minDisk": image.min_disk, "metadata": props,
                        "created": _iso(image.created_at), "updated": _iso(image.updated_at),
                        "status": _STATUS.get(image.status, "UNKNOWN"),
                        "progress": 100 if image.status == "active" else 25 if image.status == "saving" else 0,
                        "OS-EXT-IMG-SIZE:size": image.size})
            if "instance_uuid" in props:
                out["server"] = {"id": props["instance_uuid"], "links": []}
        return out

    async def _list(self, request: web.Request, detail: bool) -> web.Response:
        self._check_version(request)
        params: dict[str, Any] = {}
        limit = query_int(request, "limit", None, 0)
        if limit is not None:
            params["limit"] = str(limit)
        if "marker" in request.query:
            params["marker"] = request.query["marker"]
        images, _ = self.svc.service(IMAGE).list_images(ctx(request), params, lambda key: [])
        return json_response({"images": [self._view(request, i, detail) for i in images]})

    async def index(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=False)

    async def detail(self, request: web.Request) -> web.Response:
        return await self._list(request, detail=True)

    async def show(self, request: web.Request) -> web.Response:
        self._check_version(request)
        image = self.svc.service(IMAGE).get(ctx(request), mid(request, "image_id"))
        return json_response({"image": self._view(request, image, detail=True)})

    async def delete(self, request: web.Request) -> web.Response:
        self._check_version(request)
        await self.svc.service(IMAGE).delete(ctx(request), mid(request, "image_id"))
        return empty(204)
