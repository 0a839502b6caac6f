"""A build cut short by a restart of the process starts its networking over without leaking ports."""

from __future__ import annotations

from typing import Any

import pytest

from tests.livecloud import LiveCloud
from tinystack.compute import states
from tinystack.compute.conductor import service_context
from tinystack.compute.models import Instance

pytestmark = pytest.mark.api


def test_resumed_build_deletes_the_ports_of_the_interrupted_one(live: LiveCloud, fake_host: str, image_id: str,
                                                               compute: Any) -> None:
    conn = live.conn("demo")
    net = conn.network.find_network("private", ignore_missing=False)
    server = conn.compute.create_server(name="resumed", image_id=image_id, flavor_id="42", networks=[{"uuid": net.id}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    network = live.cloud.runtime.services["network"]  # type: ignore[union-attr]
    with compute.session() as s:
        row = s.get(Instance, server.id)
        ctx = service_context(row)
        # The process died after the first attempt created a port and before the server recorded it...
        stray = network.create_port(ctx, {"port": {"network_id": net.id, "device_id": row.id,
                                                   "device_owner": "compute:nova", "binding:host_id": fake_host}})
        # ...and the restarted conductor picks the build up where the row says it was.
        row.vm_state, row.task_state = states.BUILDING, "networking"
    live.call(compute.conductor._build(server.id))
    with compute.session() as s:
        recorded = {p["port_id"] for p in s.get(Instance, server.id).ports}
    assert stray["id"] not in recorded
    assert {p.id for p in conn.network.ports(device_id=server.id)} == recorded
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)
    assert list(conn.network.ports(device_id=server.id)) == []
