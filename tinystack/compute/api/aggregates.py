"""os-aggregates: host aggregates for admins (list, create, show, update, delete, and the add_host,
remove_host and set_metadata actions). Nova answers 200 even to create and delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from tinystack.compute import schemas
from tinystack.compute.aggregates import AZ, Aggregates, HostAggregate
from tinystack.compute.api.common import mid
from tinystack.compute.service import ComputeService
from tinystack.core import errors
from tinystack.core.web import Route, Version, ctx, empty, json_response, read_json, version

UUID_SHOWN = Version(2, 41)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def render(a: HostAggregate, v: Version, members: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": a.id, "name": a.name, "availability_zone": a.availability_zone,
                           "created_at": _time(a.created_at), "updated_at": _time(a.updated_at),
                           "deleted_at": None, "deleted": False}
    if members:
        out.update(hosts=list(a.hosts), metadata=dict(a.metadata))
    if v >= UUID_SHOWN:
        out["uuid"] = a.uuid
    return out


class AggregatesAPI:
    def __init__(self, svc: ComputeService) -> None:
        self.aggregates = Aggregates(svc)

    def routes(self) -> list[Route]:
        base = "/v2.1/os-aggregates"
        return [
            Route("GET", base, self.index), Route("POST", base, self.create),
            Route("GET", f"{base}/{{ident}}", self.show), Route("PUT", f"{base}/{{ident}}", self.update),
            Route("DELETE", f"{base}/{{ident}}", self.delete),
            Route("POST", f"{base}/{{ident}}/action", self.action),
        ]

    async def index(self, request: web.Request) -> web.Response:
        v = version(request)
        return json_response({"aggregates": [render(a, v) for a in self.aggregates.list_all(ctx(request))]})

    async def create(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.AGGREGATE_CREATE))["aggregate"]
        made = self.aggregates.create(ctx(request), body["name"], body.get(AZ))
        # As Nova: the new aggregate without its (empty) hosts and metadata.
        return json_response({"aggregate": render(made, version(request), members=False)})

    async def show(self, request: web.Request) -> web.Response:
        found = self.aggregates.show(ctx(request), mid(request, "ident"))
        return json_response({"aggregate": render(found, version(request))})

    async def update(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.AGGREGATE_UPDATE))["aggregate"]
        if "name" in body:
            body["name"] = body["name"].strip()
            if not body["name"]:
                raise errors.BadRequest("Invalid input for field 'aggregate/name': it is blank.")
        updated = self.aggregates.update(ctx(request), mid(request, "ident"), body)
        return json_response({"aggregate": render(updated, version(request))})

    async def delete(self, request: web.Request) -> web.Response:
        self.aggregates.delete(ctx(request), mid(request, "ident"))
        return empty(200)

    async def action(self, request: web.Request) -> web.Response:
        body = await read_json(request, schemas.AGGREGATE_ACTION)
        c, ident = ctx(request), mid(request, "ident")
        if "add_host" in body:
            done = self.aggregates.add_host(c, ident, body["add_host"]["host"])
        elif "remove_host" in body:
            done = self.aggregates.remove_host(c, ident, body["remove_host"]["host"])
        else:
            done = self.aggregates.set_metadata(c, ident, body["set_metadata"]["metadata"])
        return json_response({"aggregate": render(done, version(request))})
