"""Network documents' generations never go back for an id, and a crash between commit and publish loses nothing
(design §7, tinystack/network/controller_documents.py).

A document whose resource goes away (a port unbound, a network's last DHCP subnet deleted) is published as a
delete and its row removed; when it comes back, its generation starts above every removed document's
(``DocGenerationFloor``), so the agent, which remembers the generation of the delete, takes it. The crash cases
use ``tinystack.core.desired.before_publish`` (the in-process form of ``TINYSTACK_CRASH_BEFORE_PUBLISH``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import waiting
from tests.livecloud import LiveCloud
from tests.network.conftest import unique
from tinystack.core import desired
from tinystack.core.auth import RequestContext
from tinystack.network.agent import NetworkAgent
from tinystack.network.controller_documents import floor_of
from tinystack.network.models import PublishedDoc

pytestmark = pytest.mark.api

INTERVAL = 0.5


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    c = LiveCloud(Path(tmp_path_factory.mktemp("netgen")), desired__sync_interval=str(INTERVAL))
    try:
        yield c
    finally:
        c.stop()


class Crashes:
    """A ``before_publish`` hook: the first network publish whose key holds a chosen text dies before the bus."""

    def __init__(self) -> None:
        self.wanted: set[str] = set()
        self.hit: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, service: str, key: str) -> None:
        if service != "network":
            return
        with self._lock:
            match = next((w for w in self.wanted if w in key), None)
            if match is None:
                return
            self.wanted.discard(match)
            self.hit.append(match)
        raise desired.SimulatedCrash


@pytest.fixture
def crashes() -> Iterator[Crashes]:
    hook = Crashes()
    desired.before_publish = hook
    try:
        yield hook
    finally:
        desired.before_publish = None


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    return waiting.wait_for(check, timeout, what)


def svc(cloud: LiveCloud) -> Any:
    return cloud.cloud.runtime.services["network"]  # type: ignore[union-attr]


def admin_ctx(cloud: LiveCloud) -> RequestContext:
    return RequestContext(user_id="nova", project_id=cloud.conn("admin").current_project_id, roles=("admin",))


def row(cloud: LiveCloud, kind: str, ident: str) -> tuple[int, int] | None:
    """(generation, published_generation) of a document's row, None when it has none."""
    with svc(cloud).session() as s:
        found = s.get(PublishedDoc, (kind, ident))
        return None if found is None else (found.generation, found.published_generation)


def bound_port(cloud: LiveCloud, host: str) -> dict[str, Any]:
    private = cloud.conn("admin").network.find_network("private", ignore_missing=False)
    return svc(cloud).create_port(admin_ctx(cloud), {"port": {  # type: ignore[no-any-return]
        "network_id": private.id, "device_owner": "compute:nova", "binding:host_id": host}})


def bind(cloud: LiveCloud, port_id: str, host: str) -> None:
    svc(cloud).update_port(admin_ctx(cloud), port_id, {"port": {"binding:host_id": host}})


def test_a_port_bound_again_gets_a_newer_generation(cloud: LiveCloud) -> None:
    agent = cloud.agent(NetworkAgent, cloud.host)
    port = bound_port(cloud, cloud.host)
    key = f"port:{port['id']}"
    wait_for("port document on the agent", lambda: port["id"] in agent.docs["port"])
    first = agent.generations[key]

    bind(cloud, port["id"], "")
    wait_for("port document removed", lambda: port["id"] not in agent.docs["port"])
    wait_for("removed document's row gone", lambda: row(cloud, "port", port["id"]) is None)
    removed = agent.generations[key]
    assert removed > first
    with svc(cloud).session() as s:
        assert floor_of(s) >= removed

    bind(cloud, port["id"], cloud.host)
    wait_for("port document back on the agent", lambda: port["id"] in agent.docs["port"])
    assert agent.generations[key] > removed
    back = row(cloud, "port", port["id"])
    assert back is not None and back[0] == back[1] == agent.generations[key]
    svc(cloud).delete_port(admin_ctx(cloud), port["id"])
    wait_for("port document removed", lambda: port["id"] not in agent.docs["port"])


def test_dhcp_document_of_a_recreated_subnet_is_taken(cloud: LiveCloud) -> None:
    agent = cloud.agent(NetworkAgent, cloud.host)
    conn = cloud.conn("demo")
    net = conn.network.create_network(name=unique("gen"))
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.77.0.0/24")
    wait_for("DHCP document on the agent", lambda: net.id in agent.docs["dhcp"])
    conn.network.delete_subnet(sub)
    wait_for("DHCP document removed", lambda: net.id not in agent.docs["dhcp"])
    wait_for("removed DHCP row gone", lambda: row(cloud, "dhcp", net.id) is None)
    removed = agent.generations[f"dhcp:{net.id}"]
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.77.1.0/24")
    spec = wait_for("DHCP document back on the agent", lambda: agent.docs["dhcp"].get(net.id))
    assert agent.generations[f"dhcp:{net.id}"] > removed
    assert "10.77.1.0/24" in repr(spec)
    conn.network.delete_network(net)
    wait_for("network document removed", lambda: net.id not in agent.docs["network"])


def test_unbind_and_rebind_survive_crashes_before_the_publish(cloud: LiveCloud, crashes: Crashes) -> None:
    """The delete's publish dies, then the new put's: the rows stay ahead of what went out, and the controller's
    periodic pass publishes both (no agent restart, no further change)."""
    agent = cloud.agent(NetworkAgent, cloud.host)
    port = bound_port(cloud, cloud.host)
    key = f"port:{port['id']}"
    wait_for("port document on the agent", lambda: port["id"] in agent.docs["port"])

    crashes.wanted.add(key)
    bind(cloud, port["id"], "")
    wait_for("the crash", lambda: crashes.hit == [key])
    wait_for("port document removed by the periodic pass", lambda: port["id"] not in agent.docs["port"])
    wait_for("removed document's row gone", lambda: row(cloud, "port", port["id"]) is None)
    removed = agent.generations[key]

    crashes.wanted.add(key)
    bind(cloud, port["id"], cloud.host)
    wait_for("the second crash", lambda: crashes.hit == [key, key])
    wait_for("port document back by the periodic pass", lambda: port["id"] in agent.docs["port"])
    assert agent.generations[key] > removed
    svc(cloud).delete_port(admin_ctx(cloud), port["id"])
    wait_for("port document removed", lambda: port["id"] not in agent.docs["port"])
