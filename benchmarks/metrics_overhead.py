"""What the metrics cost an API request: recording one request's samples (the middleware's ``_measure``: route
template, counter, latency histogram) against a same-run baseline, one trivial request through the aiohttp stack
and the ServiceApp middleware (which includes that recording).

Usage: python benchmarks/metrics_overhead.py [requests]
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from tinystack.core.web import Route, ServiceApp, json_response, plain_fault


async def _ok(_request: web.Request) -> web.Response:
    return json_response({"ok": True})


def main(n: int) -> None:
    svc = ServiceApp("bench", [Route("GET", "/items/{id}", _ok, public=True)], plain_fault)
    app = svc.build()

    async def through_stack() -> float:
        async with TestClient(TestServer(app)) as client:
            for _ in range(50):  # warm up
                await (await client.get("/items/x")).read()
            started = time.perf_counter()
            for _ in range(n):
                await (await client.get("/items/x")).read()
            return (time.perf_counter() - started) / n

    per_request = asyncio.run(through_stack())

    async def resolved() -> web.Request:
        request = make_mocked_request("GET", "/items/x", app=app)
        match = await app.router.resolve(request)
        request._match_info = match  # what aiohttp sets before the middlewares run
        return request

    request = asyncio.run(resolved())
    rounds = n * 20
    started = time.perf_counter()
    for _ in range(rounds):
        svc._measure(request, 200, 0.0012)
    per_record = (time.perf_counter() - started) / rounds
    print(f"one request through aiohttp + middleware: {per_request * 1e6:9.1f} us")
    print(f"recording its metrics:                    {per_record * 1e6:9.2f} us  "
          f"({per_record / per_request:.2%} of the request)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
