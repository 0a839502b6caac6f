"""Request ids and metrics on a live cloud: the id of the POST that creates a server is on the compute agent's
log lines about that server, and the API and reconcile series show the traffic."""

from __future__ import annotations

import logging

import pytest

from tests.livecloud import LiveCloud
from tinystack.core import log as log_mod
from tinystack.core import metrics

pytestmark = pytest.mark.api


def test_request_id_from_post_to_the_compute_agent(live: LiveCloud, caplog: pytest.LogCaptureFixture) -> None:
    conn = live.conn("admin")
    image = conn.image.create_image(name="rid-img", data=b"\0" * 4096, disk_format="raw", container_format="bare")
    caplog.handler.addFilter(log_mod.RequestIdFilter())
    with caplog.at_level(logging.DEBUG, logger="tinystack"):
        response = conn.compute.post("/servers", json={"server": {
            "name": "rid", "imageRef": image.id, "flavorRef": "1", "networks": "none"}},
            headers={"OpenStack-API-Version": "compute 2.37"})
        assert response.status_code == 202, response.text
        rid = response.headers["x-openstack-request-id"]
        server_id = response.json()["server"]["id"]
        server = conn.compute.get_server(server_id)
        try:
            conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.2)
        finally:
            caplog.handler.filters.clear()
    try:
        agent_lines = [r for r in caplog.records
                       if r.name == "tinystack.compute.agent" and server_id in r.getMessage()]
        assert agent_lines, "the compute agent logged nothing about the server"
        assert {r.__dict__["request_id"] for r in agent_lines} == {rid}
        # The agent's reconciles of that server (logged by its reconciler) carry the id as well.
        reconciles = [r for r in caplog.records if r.name == "tinystack.core.reconcile"
                      and r.getMessage().startswith(f"compute-{live.host}: reconciled {server_id}")]
        assert reconciles and reconciles[0].__dict__["request_id"] == rid
    finally:
        conn.compute.delete_server(server_id)
        conn.compute.wait_for_delete(server, wait=30, interval=0.2)
        conn.image.delete_image(image)
    text = metrics.REGISTRY.render()
    assert 'tinystack_http_requests_total{service="compute",route="/v2.1/servers",method="POST",status="202"}' in text
    assert f'tinystack_reconcile_duration_seconds_count{{reconciler="compute-{live.host}",outcome="ok"}}' in text
    assert 'tinystack_bus_lag_seconds_count{topic="agent.compute"}' in text


def test_healthcheck_on_every_api_and_while_draining(live: LiveCloud) -> None:
    """``GET /healthcheck`` answers ``OK`` without a token on every API, and 503 while the process drains (what a
    load balancer checks, docs/deployment.md)."""
    import requests

    from tinystack.core.web import Health

    for service in ("identity", "compute", "placement", "image", "network", "volume"):
        root = live.url(service).split("/v")[0].rstrip("/")
        r = requests.get(f"{root}/healthcheck", timeout=10)
        assert (r.status_code, r.text) == (200, "OK"), (service, r.status_code, r.text)
    root = live.url("compute").split("/v")[0].rstrip("/")
    Health.draining = True
    try:
        r = requests.get(f"{root}/healthcheck", timeout=10)
        assert (r.status_code, r.text) == (503, "DRAINING")
    finally:
        Health.draining = False
    assert requests.get(f"{root}/healthcheck", timeout=10).status_code == 200
