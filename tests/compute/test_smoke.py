"""End to end: server create → ACTIVE through the fake agent, then delete."""

from __future__ import annotations

import pytest

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def test_boot_and_delete(live: LiveCloud, fake_host: str, image_id: str) -> None:
    conn = live.conn("demo")
    server = conn.compute.create_server(name="smoke", image_id=image_id, flavor_id="1", networks="none")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.2)
    assert server.status == "ACTIVE"
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.2)
