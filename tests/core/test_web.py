"""The web layer: fault formats, request ids, microversions, JSON validation, unknown routes."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.web import (
    Microversions,
    Route,
    ServiceApp,
    Version,
    ctx,
    json_response,
    keystone_fault,
    neutron_fault,
    nova_fault,
    read_json,
    version,
)

SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


async def echo(request: web.Request) -> web.Response:
    body = await read_json(request, SCHEMA)
    return json_response({"name": body["name"], "user": ctx(request).user_id, "version": str(version(request))})


async def missing(_request: web.Request) -> web.Response:
    raise errors.NotFound("no such thing")


async def crash(_request: web.Request) -> web.Response:
    raise RuntimeError("bug")


def validator(token: str) -> RequestContext:
    if token != "good":
        raise errors.Unauthorized("bad token")
    return RequestContext(user_id="u1")


def run(fault: Any, calls: list[tuple[str, str, dict[str, str], Any]]) -> list[tuple[int, dict[str, str], Any]]:
    mv = Microversions("compute", Version(2, 1), Version(2, 90), legacy_header="X-OpenStack-Nova-API-Version")
    app = ServiceApp("t", [Route("POST", "/echo", echo), Route("GET", "/missing", missing, public=True),
                           Route("GET", "/crash", crash, public=True)], fault, validator=validator, microversions=mv,
                     request_id_headers=("x-openstack-request-id", "x-compute-request-id")).build()

    async def scenario() -> list[tuple[int, dict[str, str], Any]]:
        out = []
        async with TestClient(TestServer(app)) as client:
            for method, path, headers, body in calls:
                r = await client.request(method, path, headers=headers, data=body)
                text = await r.text()
                out.append((r.status, dict(r.headers), text))
        return out

    return asyncio.run(scenario())


def test_fault_formats_and_request_ids() -> None:
    results = run(nova_fault, [("GET", "/missing", {}, None), ("GET", "/crash", {}, None), ("GET", "/nope", {}, None)])
    (s1, h1, b1), (s2, _, b2), (s3, _, b3) = results
    assert s1 == 404 and '"itemNotFound"' in b1 and "no such thing" in b1
    assert h1["x-openstack-request-id"] == h1["x-compute-request-id"] and h1["x-compute-request-id"].startswith("req-")
    assert s2 == 500 and '"computeFault"' in b2 and "bug" not in b2
    assert s3 == 404 and '"itemNotFound"' in b3
    assert '"NeutronError"' in run(neutron_fault, [("GET", "/missing", {}, None)])[0][2]
    assert '"error"' in run(keystone_fault, [("GET", "/missing", {}, None)])[0][2]


def test_auth_validation_and_microversions() -> None:
    good = {"X-Auth-Token": "good", "Content-Type": "application/json"}
    results = run(nova_fault, [
        ("POST", "/echo", {}, '{"name": "x"}'),
        ("POST", "/echo", {"X-Auth-Token": "bad"}, '{"name": "x"}'),
        ("POST", "/echo", good, '{"name": 3}'),
        ("POST", "/echo", good, "{bad json"),
        ("POST", "/echo", {**good, "OpenStack-API-Version": "compute 2.50"}, '{"name": "x"}'),
        ("POST", "/echo", {**good, "X-OpenStack-Nova-API-Version": "latest"}, '{"name": "x"}'),
        ("POST", "/echo", {**good, "OpenStack-API-Version": "compute 3.0"}, '{"name": "x"}'),
        ("POST", "/echo", good, '{"name": "x"}'),
    ])
    statuses = [r[0] for r in results]
    assert statuses == [401, 401, 400, 400, 200, 200, 406, 200]
    assert '"version":"2.50"' in results[4][2] and results[4][1]["OpenStack-API-Version"] == "compute 2.50"
    assert '"version":"2.90"' in results[5][2]
    assert '"version":"2.1"' in results[7][2]
    assert "name" in results[2][2]
