"""The SQL the generation floor and the heartbeats rely on, on PostgreSQL and MySQL (MariaDB): migration 0003
seeds the floor, ``core.db.greatest`` only ever raises it, and an older heartbeat leaves an agent's row alone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.databases import available, scratch_database
from tinystack import config
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.network import admin
from tinystack.network.controller_documents import floor_of, raise_floor
from tinystack.network.models import Agent
from tinystack.network.service import MIGRATIONS, NetworkService

pytestmark = pytest.mark.db


@pytest.fixture(params=["postgresql", "mysql"])
def network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NetworkService]:
    if not available(request.param):
        pytest.fail(f"no {request.param} server on loopback: the test command's setup should provide one")
    with scratch_database(request.param) as url:
        cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path), "database__connection": url})
        db = Database(url)
        try:
            db.migrate("network", MIGRATIONS)
            yield NetworkService(cfg, db, PolicyEngine())
        finally:
            db.dispose()


def test_floor_and_heartbeats(network: NetworkService) -> None:
    with network.session() as s:
        assert floor_of(s) == 0  # seeded by the migration
    for generation in (5, 3, 9, 7):
        with network.session() as s:
            raise_floor(s, generation)
    with network.session() as s:
        assert floor_of(s) == 9

    now = time.time()
    msg = {"agent": "network", "host": "h1", "binary": "tinystack-network-agent"}
    admin.record_heartbeat(network, {**msg, "time": now})
    admin.record_heartbeat(network, {**msg, "time": now + 5})
    admin.record_heartbeat(network, {**msg, "time": now + 2})
    with network.session() as s:
        epochs = list(s.scalars(select(Agent.heartbeat_epoch).where(Agent.host == "h1")))
    assert len(epochs) == len(admin.AGENT_TYPES)
    assert all(e == pytest.approx(now + 5, abs=0.5) for e in epochs), (epochs, now)
