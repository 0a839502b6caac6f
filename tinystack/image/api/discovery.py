"""``/v2/schemas/*`` and ``/v2/info/*``: what clients fetch to learn the API and the site."""

from __future__ import annotations

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, json_response
from tinystack.image import schemas
from tinystack.image.service import ImageService


class DiscoveryAPI:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v2/schemas/{name}", self.schema),
            Route("GET", "/v2/info/import", self.import_info),
            Route("GET", "/v2/info/stores", self.stores),
            Route("GET", "/v2/info/stores/detail", self.stores_detail),
            Route("GET", "/v2/info/usage", self.usage),
        ]

    async def schema(self, request: web.Request) -> web.Response:
        make = schemas.SCHEMAS.get(request.match_info["name"])
        if make is None:
            raise errors.NotFound("The resource could not be found.")
        return json_response(make())

    async def import_info(self, _request: web.Request) -> web.Response:
        return json_response({"import-methods": {"description": "Import methods available.", "type": "array",
                                                 "value": list(self.svc.settings.enabled_import_methods)}})

    async def stores(self, _request: web.Request) -> web.Response:
        return json_response({"stores": self.svc.store_list()})

    async def stores_detail(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "stores_info_detail")
        return json_response({"stores": self.svc.store_list(detail=True)})

    async def usage(self, request: web.Request) -> web.Response:
        return json_response({"usage": self.svc.project_usage(ctx(request))})
