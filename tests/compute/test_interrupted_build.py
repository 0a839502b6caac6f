"""Builds that stall: one cut short by a restart of the process starts its networking over without leaking ports;
one a live process holds is not adopted, but fails past build_timeout; a lost report is asked for again."""

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


def test_a_build_held_past_build_timeout_goes_to_error_with_a_fault(live: LiveCloud, image_id: str,
                                                                     compute: Any) -> None:
    """A build a live process holds (and renews, so no sweep adopts it) but never moves on ends in ERROR with a
    fault once build_timeout has passed since the server was created; a younger one is left alone (issue 15)."""
    conn = live.conn("demo")
    net = conn.network.find_network("private", ignore_missing=False)
    old, young = (conn.compute.wait_for_server(conn.compute.create_server(
        name=name, image_id=image_id, flavor_id="42", networks=[{"uuid": net.id}]), status="ACTIVE", wait=30,
        interval=0.1) for name in ("stuck-old", "stuck-young"))
    conductor = compute.conductor
    with compute.session() as s:
        for sid, created in ((old.id, utcnow() - timedelta(hours=1)), (young.id, utcnow())):
            row = s.get(Instance, sid)
            row.vm_state, row.task_state, row.created_at = states.BUILDING, "networking", created
    conductor._building.update({old.id, young.id})  # a build task that hangs: in hand, never finishing
    try:
        conductor.renew_builds()
        assert conductor.expire_builds(0) == []  # 0: no timeout, as Nova's default
        live.call(conductor.sweep_builds(15, 600))
        with compute.session() as s:
            failed, waiting = s.get(Instance, old.id), s.get(Instance, young.id)
            assert (failed.vm_state, failed.task_state) == (states.ERROR, None)
            assert "build_timeout" in failed.fault["message"] and failed.fault["code"] == 500
            assert (waiting.vm_state, waiting.task_state) == (states.BUILDING, "networking")
        assert conn.compute.get_server(old.id).status == "ERROR"
    finally:
        conductor._building.difference_update({old.id, young.id})
        with compute.session() as s:
            row = s.get(Instance, young.id)
            row.vm_state, row.task_state = states.ACTIVE, None
    for server in (old, young):
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=30, interval=0.1)


def test_a_build_failed_past_build_timeout_while_it_ran_stops_there(live: LiveCloud, image_id: str, compute: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep fails a build while its process is still binding the ports: the build goes no further, so the
    server stays in ERROR (its agent's report would otherwise settle it ACTIVE) and no task state is left on it."""
    conn = live.conn("demo")
    net = conn.network.find_network("private", ignore_missing=False)
    conductor = compute.conductor
    bind_all = conductor.net.bind_all

    def slow_bind(inst: Instance, host: str) -> Any:
        with compute.session() as s:  # it has been building for an hour when the sweep comes
            s.get(Instance, inst.id).created_at = utcnow() - timedelta(hours=1)
        assert conductor.expire_builds(600) == [inst.id]
        return bind_all(inst, host)

    monkeypatch.setattr(conductor.net, "bind_all", slow_bind)
    server = conn.compute.create_server(name="expired", image_id=image_id, flavor_id="42", networks=[{"uuid": net.id}])
    server = conn.compute.wait_for_server(server, status="ERROR", failures=[], wait=30, interval=0.1)
    monkeypatch.setattr(conductor.net, "bind_all", bind_all)
    live.call(conductor.idle())
    with compute.session() as s:
        row = s.get(Instance, server.id)
        assert (row.vm_state, row.task_state) == (states.ERROR, None)
        assert "build_timeout" in row.fault["message"]
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)
    assert list(conn.network.ports(device_id=server.id)) == []


def test_a_lost_status_report_is_asked_for_again_by_the_sync(live: LiveCloud, image_id: str, compute: Any) -> None:
    """The agent's last report never arrived (a handler that failed twice drops the message) and the agent says
    each status once: the periodic host sync asks for it again, so the server settles instead of staying in BUILD."""
    conn = live.conn("demo")
    net = conn.network.find_network("private", ignore_missing=False)
    server = conn.compute.create_server(name="unheard", image_id=image_id, flavor_id="42", networks=[{"uuid": net.id}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    with compute.session() as s:  # where the row stood before the agent's ACTIVE report, which was lost
        row = s.get(Instance, server.id)
        row.vm_state, row.task_state, row.observed_generation = states.BUILDING, "spawning", 0
        row.updated_at = utcnow() - timedelta(minutes=5)  # nothing has moved it since: not a report still queued
    server = conn.compute.get_server(server.id)
    assert server.status == "BUILD"
    live.call(compute.conductor._sync_hosts())
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    with compute.session() as s:
        row = s.get(Instance, server.id)
        assert row.observed_generation == row.generation
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)
