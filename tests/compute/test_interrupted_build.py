"""A build cut short by a restart of the process starts its networking over without leaking ports."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.livecloud import LiveCloud
from tinystack.compute import states
from tinystack.compute.conductor import service_context
from tinystack.compute.models import Instance, utcnow

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


def test_a_live_process_renews_its_queued_builds_so_none_is_adopted(live: LiveCloud, image_id: str,
                                                                    compute: Any) -> None:
    """A build queued behind others in a busy but live process is not taken for a dead process's (split roles)."""
    conn = live.conn("demo")
    net = conn.network.find_network("private", ignore_missing=False)
    server = conn.compute.create_server(name="queued", image_id=image_id, flavor_id="42", networks=[{"uuid": net.id}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    conductor = compute.conductor
    long_ago = utcnow() - timedelta(hours=1)
    with compute.session() as s:
        row = s.get(Instance, server.id)
        row.vm_state, row.task_state, row.updated_at = states.BUILDING, "scheduling", long_ago
    conductor._building.add(server.id)  # this process still has it in hand
    try:
        conductor.renew_builds()
        with compute.session() as s:
            renewed = s.get(Instance, server.id).updated_at
        assert renewed > long_ago + timedelta(minutes=59)
        # Another process's sweep (its own _building is empty) would see a fresh build and leave it alone.
        with compute.session() as s:
            stale = s.scalars(select(Instance.id).where(Instance.id == server.id,
                                                        Instance.updated_at < utcnow() - timedelta(seconds=15))).all()
        assert stale == []
    finally:
        conductor._building.discard(server.id)
        with compute.session() as s:
            row = s.get(Instance, server.id)
            row.vm_state, row.task_state = states.ACTIVE, None
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)
