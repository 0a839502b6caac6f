"""Over RabbitMQ (db tier: the broker on loopback): the doctor connects to the broker itself and hears the agents'
heartbeats with their envelopes (version, clock), and a POST's request id reaches the compute agent's log lines
through the broker."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud
from tests.rabbit import URL
from tinystack.core import log as log_mod
from tinystack.doctor import run

pytestmark = pytest.mark.db


@pytest.fixture()
def cloud(tmp_path: Path) -> Iterator[LiveCloud]:
    live = LiveCloud(tmp_path / "cloud", bus__transport_url=URL, compute__heartbeat_interval="1")
    try:
        yield live
    finally:
        live.stop()


def test_doctor_over_the_broker(cloud: LiveCloud) -> None:
    cfg = copy.deepcopy(cloud.config)
    found = asyncio.run(run.diagnose(cfg, listen=2.5))  # its own connection, as `tinystack doctor` makes
    text = run.render_text(found, verbose=True)
    assert run.healthy(found), text
    assert "broker amqp://guest:***@127.0.0.1:5672/ reachable" in text
    heard = [f for f in found if f.check == "skew"]
    assert heard and heard[0].level == "ok" and "agents heard: same version" in heard[0].what, text


def test_request_id_through_the_broker(cloud: LiveCloud, caplog: pytest.LogCaptureFixture) -> None:
    conn = cloud.conn("admin")
    image = conn.image.create_image(name="rid-img", data=b"\0" * 4096, disk_format="raw", container_format="bare")
    caplog.handler.addFilter(log_mod.RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="tinystack.compute.agent"):
        response = conn.compute.post("/servers", json={"server": {
            "name": "rid", "imageRef": image.id, "flavorRef": "1", "networks": "none"}},
            headers={"OpenStack-API-Version": "compute 2.37"})
        assert response.status_code == 202, response.text
        server = conn.compute.get_server(response.json()["server"]["id"])
        try:
            conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.2)
        finally:
            caplog.handler.filters.clear()
    try:
        lines = [r for r in caplog.records if r.name == "tinystack.compute.agent" and server.id in r.getMessage()]
        assert lines and {r.__dict__["request_id"] for r in lines} == {response.headers["x-openstack-request-id"]}
    finally:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=30, interval=0.2)
        conn.image.delete_image(image)
