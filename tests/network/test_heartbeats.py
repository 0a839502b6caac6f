"""Heartbeats keep the latest time whatever the order they are recorded in: the database decides (a conditional
UPDATE / ``core.db.greatest``), so two API processes recording one agent's heartbeats at once, or a message
delivered late, never move an agent's or a compute service's last-seen time back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from tinystack import config
from tinystack.compute.admin import Admin
from tinystack.compute.models import Service
from tinystack.compute.service import MIGRATIONS as COMPUTE_MIGRATIONS
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.network import admin
from tinystack.network.models import Agent
from tinystack.network.service import MIGRATIONS, NetworkService

pytestmark = pytest.mark.unit


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})


@pytest.fixture
def network(cfg: config.Config) -> Iterator[NetworkService]:
    db = Database(cfg.database_url)
    db.migrate("network", MIGRATIONS)
    yield NetworkService(cfg, db, PolicyEngine())
    db.dispose()


def beat(host: str, stamp: float, **extra: str) -> dict[str, object]:
    return {"agent": "network", "host": host, "time": stamp, "binary": "tinystack-network-agent", **extra}


def agents(svc: NetworkService, host: str) -> list[Agent]:
    with svc.session() as s:
        rows = list(s.scalars(select(Agent).where(Agent.host == host)))
        for row in rows:
            s.expunge(row)
        return rows


def test_an_older_network_heartbeat_never_moves_the_agent_back(network: NetworkService) -> None:
    now = time.time()
    assert admin.record_heartbeat(network, beat("h1", now, seen="first")) is True
    assert admin.record_heartbeat(network, beat("h1", now + 5, seen="newer")) is False
    admin.record_heartbeat(network, beat("h1", now + 2, seen="late"))  # delivered after the newer one
    rows = agents(network, "h1")
    assert len(rows) == len(admin.AGENT_TYPES)
    for row in rows:
        assert row.heartbeat_epoch == now + 5
        assert row.configurations == {"seen": "newer"}
        assert admin.alive(network, row)


def test_a_network_agent_back_after_being_down_restarts_its_clock(network: NetworkService) -> None:
    down = network.settings.agent_down_time
    old = time.time() - 10 * down
    admin.record_heartbeat(network, beat("h2", old))
    started = {r.agent_type: r.started_at for r in agents(network, "h2")}
    assert admin.record_heartbeat(network, beat("h2", time.time())) is True
    for row in agents(network, "h2"):
        assert row.started_at > started[row.agent_type]
        assert admin.alive(network, row)


def test_an_older_compute_heartbeat_never_moves_last_seen_back(cfg: config.Config) -> None:
    db = Database(cfg.database_url)
    try:
        db.migrate("compute", COMPUTE_MIGRATIONS)
        fleet = Admin(SimpleNamespace(config=cfg, session=db.session))  # type: ignore[arg-type]
        now = time.time()
        fleet.heartbeat("c1", "nova-compute", now)
        fleet.heartbeat("c1", "nova-compute", now + 5)
        fleet.heartbeat("c1", "nova-compute", now + 1)  # late
        with db.session() as s:
            assert s.scalars(select(Service.last_seen).where(Service.host == "c1")).one() == now + 5
    finally:
        db.dispose()


def test_a_process_without_a_network_host_follows_the_ports_bound_one(network: NetworkService) -> None:
    """An API process started after the agents (a second one, or one restarted in an upgrade) takes the network host
    the DHCP and router ports are bound to, not whichever agent sent the latest heartbeat: every process of a split
    cloud then publishes DHCP and routers to the same node."""
    from tinystack.network.controller_reports import Reports
    from tinystack.network.models import Network, Port

    now = time.time()
    admin.record_heartbeat(network, beat("h1", now - 1))
    admin.record_heartbeat(network, beat("h2", now))  # the latest
    with network.session() as s:
        s.add(Network(id="00000000-0000-0000-0000-000000000001", project_id="p", name="n", network_type="vxlan"))
        s.flush()
        s.add(Port(id="00000000-0000-0000-0000-000000000002", project_id="p", mac_address="fa:16:3e:00:00:01",
                   network_id="00000000-0000-0000-0000-000000000001", device_owner="network:dhcp", host_id="h1"))
        s.commit()
    fresh = SimpleNamespace(_host=None, svc=network, _bound_host=Reports._bound_host)
    assert Reports._latest_host(fresh) == "h1"  # type: ignore[arg-type]
    # Its agent gone (not alive), the latest heartbeat's host instead.
    network.settings = SimpleNamespace(**{**vars(network.settings), "agent_down_time": 0.5})  # type: ignore[assignment]
    admin.record_heartbeat(network, beat("h2", time.time() + 5))
    assert Reports._latest_host(SimpleNamespace(_host=None, svc=network, _bound_host=Reports._bound_host)) == "h2"  # type: ignore[arg-type]
