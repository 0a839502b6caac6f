"""The metrics: text exposition, the API middleware's series, bus lag and request ids across the bus, the
reconcile queue's depth and the request id its reconciles run with."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tinystack.core import log as log_mod
from tinystack.core import metrics
from tinystack.core.bus import ENVELOPE, InProcessBus, current_envelope, opened, seal
from tinystack.core.reconcile import DONE, Reconciler, Result
from tinystack.core.web import Route, ServiceApp, json_response, plain_fault

pytestmark = pytest.mark.unit


def test_exposition_format() -> None:
    reg = metrics.Registry()
    c = reg.register(metrics.Counter("t_total", "Things.", ("kind",)))
    h = reg.register(metrics.Histogram("t_seconds", "Time.", ("op",), buckets=(0.1, 1.0)))
    assert isinstance(c, metrics.Counter) and isinstance(h, metrics.Histogram)
    c.inc('a"b')
    c.inc('a"b', amount=2)
    h.observe(0.05, "x")
    h.observe(0.5, "x")
    h.observe(5, "x")
    text = reg.render()
    assert "# TYPE t_total counter" in text
    assert 't_total{kind="a\\"b"} 3' in text
    assert 't_seconds_bucket{op="x",le="0.1"} 1' in text
    assert 't_seconds_bucket{op="x",le="1"} 2' in text
    assert 't_seconds_bucket{op="x",le="+Inf"} 3' in text
    assert 't_seconds_count{op="x"} 3' in text
    assert 't_seconds_sum{op="x"} 5.55' in text
    with pytest.raises(ValueError):
        reg.register(metrics.Counter("t_total", "again"))


def test_collected_sources_add_up_and_a_broken_one_is_skipped() -> None:
    g = metrics.Collected("t_depth", "Depth.", ("name",))

    def broken() -> list[tuple[tuple[str, ...], float]]:
        raise RuntimeError("boom")

    one = g.add(lambda: [(("q",), 2.0)])
    g.add(lambda: [(("q",), 3.0), (("r",), 1.0)])
    g.add(broken)
    assert g.samples() == {("q",): 5.0, ("r",): 1.0}
    g.remove(one)
    assert g.samples() == {("q",): 3.0, ("r",): 1.0}


def test_topic_family() -> None:
    assert metrics.topic_family("agent.compute.node-1") == "agent.compute"
    assert metrics.topic_family("status.compute") == "status.compute"


async def _item(request: web.Request) -> web.Response:
    return json_response({"id": request.match_info["id"]})


def test_middleware_counts_by_route_template() -> None:
    async def scenario() -> None:
        app = ServiceApp("metricstest", [Route("GET", "/items/{id}", _item, public=True)], plain_fault).build()
        async with TestClient(TestServer(app)) as client:
            for ident in ("a", "b"):
                assert (await client.get(f"/items/{ident}")).status == 200
            assert (await client.get("/nowhere")).status == 404

    before = metrics.HTTP_LATENCY.count("metricstest", "/items/{id}", "GET")
    asyncio.run(scenario())
    assert metrics.HTTP_REQUESTS.values[("metricstest", "/items/{id}", "GET", "200")] >= 2
    assert metrics.HTTP_REQUESTS.values[("metricstest", "unmatched", "GET", "404")] >= 1
    assert metrics.HTTP_LATENCY.count("metricstest", "/items/{id}", "GET") == before + 2
    assert 'route="/items/{id}"' in metrics.REGISTRY.render()


def test_envelope_carries_request_id_and_is_taken_off() -> None:
    token = log_mod.request_id.set("req-from-the-api")
    try:
        sealed = seal({"id": "x"})
    finally:
        log_mod.request_id.reset(token)
    assert sealed[ENVELOPE]["request_id"] == "req-from-the-api"
    assert sealed[ENVELOPE]["version"]
    before = metrics.BUS_LAG.count("agent.compute")
    with opened("agent.compute.h1", sealed) as body:
        assert body == {"id": "x"}
        assert log_mod.request_id.get() == "req-from-the-api"
        envelope = current_envelope.get()
        assert envelope is not None and envelope["sent"] > 0
    assert log_mod.request_id.get() == "-"
    assert metrics.BUS_LAG.count("agent.compute") == before + 1
    # A message from an older sender (no envelope) is handled as it is.
    with opened("t", {"id": "y"}) as body:
        assert body == {"id": "y"} and log_mod.request_id.get() == "-"


def test_request_id_reaches_the_reconcile_on_the_other_side(caplog: pytest.LogCaptureFixture) -> None:
    """API request -> publish -> agent handler -> enqueue -> a reconciler worker logs with the request's id."""
    seen: list[str] = []
    logger = logging.getLogger("tinystack.test.agent")

    async def scenario() -> None:
        bus = InProcessBus()

        async def reconcile(key: str) -> Result:
            seen.append(log_mod.request_id.get())
            logger.info("reconciled %s", key)
            return DONE

        rec = Reconciler("test-agent", reconcile)
        await rec.start()

        async def on_message(msg: dict[str, Any]) -> None:
            rec.enqueue(msg["id"])

        bus.subscribe("agent.test.h1", on_message)
        # Published from a fresh context, as a publisher worker in another process would.
        token = log_mod.request_id.set("req-1234")
        try:
            sealed = seal({"id": "k1"})
        finally:
            log_mod.request_id.reset(token)

        async def deliver() -> None:
            with opened("agent.test.h1", dict(sealed)) as body:
                await on_message(body)

        await asyncio.get_running_loop().create_task(deliver())
        await rec.wait_idle()
        assert 'tinystack_reconcile_queue_depth{reconciler="test-agent"} 0' in metrics.REGISTRY.render()
        rec.enqueue("k2")  # a resync: no request asked for it
        await rec.wait_idle()
        await rec.stop()
        assert ("test-agent",) not in metrics.RECONCILE_DEPTH.samples()

    before = metrics.RECONCILE_LATENCY.count("test-agent", "ok")
    caplog.handler.addFilter(log_mod.RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="tinystack.test.agent"):
        asyncio.run(scenario())
    assert seen == ["req-1234", "-"]
    ids = [r.__dict__["request_id"] for r in caplog.records if r.name == "tinystack.test.agent"]
    assert ids == ["req-1234", "-"]
    assert metrics.RECONCILE_LATENCY.count("test-agent", "ok") == before + 2


def test_metrics_server_serves_the_registry() -> None:
    import aiohttp

    async def scenario() -> tuple[int, str, str]:
        server = metrics.MetricsServer("127.0.0.1", 0)
        port = await server.start()
        try:
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
                return r.status, r.headers["Content-Type"], await r.text()
        finally:
            await server.stop()

    status, content_type, text = asyncio.run(scenario())
    assert status == 200 and content_type.startswith("text/plain") and "version=0.0.4" in content_type
    assert "# TYPE tinystack_http_requests_total counter" in text
    assert "# TYPE tinystack_bus_lag_seconds histogram" in text
