"""Networks created and deleted as fast as the API allows (Tempest's pattern) on the real dataplane: the races
between a document and its deletion (a device already there, one already gone) are expected, not errors, so
the network agent logs nothing at ERROR while it keeps up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud
from tinystack.network.agent import NetworkAgent

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]

NETWORKS = 20
WORKERS = 3


class Records(logging.Handler):
    """Every record at WARNING or above, from any thread (the cloud runs on a thread of its own)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.records.append(record)

    def at(self, level: int) -> list[logging.LogRecord]:
        with self._lock:
            return [r for r in self.records if r.levelno == level]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(old_level, logging.WARNING) if old_level else logging.WARNING)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def churn(cloud: LiveCloud, router_id: str, i: int) -> None:
    """One network's life, with no pause anywhere: network, IPv4 and IPv6 subnets, router interface, gone."""
    conn = cloud.conn("demo")
    net = conn.network.create_network(name=f"churn-{i}")
    v4 = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr=f"10.91.{i}.0/24", name=f"churn-{i}-v4")
    conn.network.create_subnet(network_id=net.id, ip_version=6, cidr=f"fd00:91:{i + 1:x}::/64", name=f"churn-{i}-v6")
    conn.network.add_interface_to_router(router_id, subnet_id=v4.id)
    port = conn.network.create_port(network_id=net.id)  # a new DHCP host: the DHCP server is reconciled again
    conn.network.delete_port(port.id)
    conn.network.remove_interface_from_router(router_id, subnet_id=v4.id)
    conn.network.delete_network(net.id)


def test_network_churn_logs_no_errors(tmp_path: Path, records: Records) -> None:
    cloud = LiveCloud(tmp_path / "state")
    lagging: str | None = None
    try:
        agent = cloud.agent(NetworkAgent, cloud.host)
        admin = cloud.conn("admin").network
        before = {r.id for listing in (admin.networks(), admin.routers(), admin.ports()) for r in listing}
        router = cloud.conn("demo").network.create_router(name="churn-router")
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda i: churn(cloud, router.id, i), range(NETWORKS)))
        cloud.conn("demo").network.delete_router(router.id)
        lagging = wait_caught_up(cloud, agent, before)
    finally:
        cloud.stop()
    errors = [f"{r.name}: {r.getMessage()}" for r in records.at(logging.ERROR) + records.at(logging.CRITICAL)]
    warnings = [f"{r.name}: {r.getMessage()}" for r in records.at(logging.WARNING)]
    print(f"churn of {NETWORKS} networks: {len(errors)} ERROR, {len(warnings)} WARNING records")
    for line in errors + warnings:
        print("RECORD", line.splitlines()[0][:300])
    assert lagging is None, lagging
    assert errors == [], "\n".join(errors)


def wait_caught_up(cloud: LiveCloud, agent: NetworkAgent, before: set[str], timeout: float = 60) -> str | None:
    """Wait until the network agent holds no document of what the churn made (ids not in ``before``: the
    bootstrap's) and has nothing left to retry (retries run on timers, so poll with a deadline); what is left
    when the deadline passes, or None."""
    deadline = time.monotonic() + timeout
    while True:
        cloud.call(agent.wait_idle())
        left = {kind: sorted(set(docs) - before) for kind, docs in agent.docs.items() if set(docs) - before}
        retrying = [k for k in agent.reconciler._timers if k.partition(":")[0] in agent.docs]
        if not left and not retrying:
            return None
        if time.monotonic() > deadline:
            return f"the network agent never caught up: documents {left}, retrying {retrying}"
        time.sleep(0.2)
