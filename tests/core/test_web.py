"""The web layer: fault formats, request ids, microversions, JSON validation, unknown routes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.web import (
    MAX_JSON_DEPTH,
    Microversions,
    Route,
    ServiceApp,
    ServiceRunner,
    Version,
    ctx,
    json_response,
    keystone_fault,
    neutron_fault,
    new_request_id,
    nova_fault,
    parse_json,
    query_int,
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


def test_fault_renderer_gets_the_failed_request() -> None:
    """A format chosen per request (Glance's, by Accept) is rendered by the renderer itself, for handler
    errors, unknown routes and crashes alike."""
    seen: list[str | None] = []

    def by_accept(err: errors.TinyError, _rid: str, request: web.BaseRequest | None = None) -> web.Response:
        accept = request.headers.get("Accept") if request is not None else None
        seen.append(accept)
        return json_response({"accept": accept, "message": err.message}, err.status)

    results = run(by_accept, [("GET", "/missing", {"Accept": "x/one"}, None), ("GET", "/nope", {"Accept": "x/two"}, None),
                              ("GET", "/crash", {"Accept": "x/three"}, None)])
    assert [(s, json.loads(b)["accept"]) for s, _, b in results] == [(404, "x/one"), (404, "x/two"), (500, "x/three")]
    assert seen == ["x/one", "x/two", "x/three"]
    assert all(h["x-openstack-request-id"].startswith("req-") for _, h, _ in results)


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


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


@pytest.mark.parametrize("raw", [
    b'{"a": NaN}', b"[Infinity]", b"[-Infinity]",  # not JSON numbers, though Python's decoder takes them
    b"[9223372036854775808]", b"[-9223372036854775809]", b"[1" + b"0" * 40 + b"]",  # past int64
    b"[1e400]", b"[-1e400]",  # floats that overflow to infinity
    b'["\\ud800"]', b'{"\\udfff": 1}', b'["a\\ud83d"]',  # lone surrogates, in values and in keys
    b'["\\u0000"]',  # NUL: PostgreSQL text cannot hold it
    nested(MAX_JSON_DEPTH + 1), nested(300_000), b'{"a":' * 300_000 + b"1" + b"}" * 300_000,
    b"", b"  ", b"{", b"\xff\xfe",
])
def test_parse_json_rejects(raw: bytes) -> None:
    with pytest.raises(errors.BadRequest):
        parse_json(raw)


@pytest.mark.parametrize(("raw", "value"), [
    (b"[9223372036854775807, -9223372036854775808]", [2**63 - 1, -(2**63)]),
    (b'["\\ud83d\\ude00"]', ["\U0001f600"]),  # a surrogate pair is one character
    (b"[1.5e300]", [1.5e300]),
    (nested(MAX_JSON_DEPTH), json.loads(nested(MAX_JSON_DEPTH))),
])
def test_parse_json_accepts(raw: bytes, value: Any) -> None:
    assert parse_json(raw) == value


def test_query_int_out_of_range() -> None:
    assert query_int(make_mocked_request("GET", "/x?limit=9223372036854775807"), "limit") == 2**63 - 1
    with pytest.raises(errors.BadRequest):
        query_int(make_mocked_request("GET", "/x?limit=9223372036854775808"), "limit")


def test_service_runner_renders_low_level_errors_in_the_fault_format() -> None:
    """A request line or header past aiohttp's limits never reaches the middleware; the runner renders it."""
    app = ServiceApp("t", [Route("GET", "/missing", missing, public=True)], nova_fault).build()

    async def scenario() -> list[tuple[int, dict[str, str], Any]]:
        runner = ServiceRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        out = []
        try:
            for request in [b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                            b"GET /missing HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
                            b"GET /missing%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                await writer.drain()
                head, _, body = (await reader.read()).partition(b"\r\n\r\n")
                writer.close()
                lines = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                out.append((int(lines[0].split()[1]), headers, json.loads(body)))
        finally:
            await runner.cleanup()
        return out

    for status, headers, body in asyncio.run(scenario()):
        assert status == 400 and body["badRequest"]["code"] == 400
        assert headers["x-openstack-request-id"].startswith("req-")


def test_request_ids_are_version_4_uuids_unique_and_not_repeated_by_a_seed_or_a_fork() -> None:
    ids = [new_request_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    for rid in ids[:200]:
        assert rid.startswith("req-") and len(rid) == 40
        u = uuid.UUID(rid[4:])
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == rid[4:]
    random.seed(1)
    first = new_request_id()
    random.seed(1)
    assert new_request_id() != first  # the ids' generator is their own
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, which must differ from the parent's next
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert child.startswith("req-") and child != new_request_id()
