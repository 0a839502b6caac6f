"""A crash between the commit and the publish loses nothing (design §7, tinystack/core/desired.py).

The publish after a commit is made to fail the way a dying process fails (the ``before_publish`` hook raises
``SimulatedCrash``: the key is dropped from memory, nothing retries it), or the bus loses the message after the
publish succeeded. No agent restarts; the host converges because the publisher's next pass reads its work list
from the database (``published_generation`` behind ``generation``) or re-sends the host its full set."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.livecloud import LiveCloud
from tinystack.compute.models import Instance
from tinystack.core import desired
from tinystack.core.auth import RequestContext

pytestmark = pytest.mark.api

INTERVAL = 0.5


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    c = LiveCloud(Path(tmp_path_factory.mktemp("desired")), desired__sync_interval=str(INTERVAL))
    try:
        yield c
    finally:
        c.stop()


class Crashes:
    """A ``before_publish`` hook: the first publish of each chosen key dies before it reaches the bus."""

    def __init__(self) -> None:
        self.wanted: set[tuple[str, str]] = set()
        self.hit: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, service: str, key: str) -> None:
        with self._lock:
            match = next(((s, k) for s, k in self.wanted if s == service and k in key), None)
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
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.05)


def image(cloud: LiveCloud) -> str:
    conn = cloud.conn("admin")
    found = conn.image.find_image("desired-img")
    if found is None:
        found = conn.image.create_image(name="desired-img", data=b"\0" * 4096, disk_format="raw",
                                        container_format="bare", visibility="public")
    return str(found.id)


def test_compute_converges_after_a_crash_before_the_publish(cloud: LiveCloud, crashes: Crashes) -> None:
    conn = cloud.conn("demo")
    net = conn.network.find_network("private", ignore_missing=False)
    name = f"crash-{uuid.uuid4().hex[:6]}"
    # Every first publish of a server dies: the build's, then the stop's.
    crashes.wanted.add(("compute", ""))
    server = conn.compute.create_server(name=name, image_id=image(cloud), flavor_id="42",
                                        networks=[{"uuid": net.id}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    assert crashes.hit == [("compute", "")]
    crashes.wanted.add(("compute", server.id))
    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=30, interval=0.1)
    assert crashes.hit[-1] == ("compute", server.id)
    compute = cloud.cloud.runtime.services["compute"]  # type: ignore[union-attr]
    with compute.session() as s:
        row = s.get(Instance, server.id)
        assert row.published_generation == row.generation == row.observed_generation
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)


def test_shelve_offload_reaches_the_old_host_after_a_crash_before_the_publish(cloud: LiveCloud) -> None:
    """The old host's delete after a shelve offload is a message of the row (``offloaded_from``), not a send
    made once: the publish that dies is made again from the work list, and marks the generation published."""
    from tinystack.compute import states
    from tinystack.compute.agent import ComputeAgent

    conn = cloud.conn("demo")
    compute = cloud.cloud.runtime.services["compute"]  # type: ignore[union-attr]
    server = conn.compute.create_server(name=f"shelf-{uuid.uuid4().hex[:6]}", image_id=image(cloud),
                                        flavor_id="42", networks="none")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    driver = cloud.agent(ComputeAgent, cloud.host).driver
    assert server.id in driver.guests
    died: list[int] = []

    def crash_the_offload(service: str, key: str) -> None:
        if service != "compute" or key != server.id or died:
            return
        with compute.session() as s:
            row = s.get(Instance, server.id)
            if row.vm_state != states.SHELVED_OFFLOADED:
                return
            died.append(row.generation)
        raise desired.SimulatedCrash

    desired.before_publish = crash_the_offload
    try:
        conn.compute.shelve_server(server)
        conn.compute.wait_for_server(server, status="SHELVED_OFFLOADED", wait=30, interval=0.1)
        wait_for("the guest gone from its old host", lambda: server.id not in driver.guests)

        def published() -> bool:
            with compute.session() as s:
                row = s.get(Instance, server.id)
                return bool(row.published_generation == row.generation == died[0] and row.host is None)

        wait_for("the offload's generation published", published)
    finally:
        desired.before_publish = None
    assert died, "the offload's publish never ran"
    conn.compute.unshelve_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    assert server.id in driver.guests
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)


def test_addresses_catch_up_with_a_lost_network_changed(cloud: LiveCloud) -> None:
    """A server's floating addresses follow the floating IPs on its ports at each sync, not only when the
    ``network-changed`` event arrives: an event lost (here, addresses written back stale) delays nothing long."""
    conn = cloud.conn("demo")
    compute = cloud.cloud.runtime.services["compute"]  # type: ignore[union-attr]
    net = conn.network.find_network("private", ignore_missing=False)
    public = conn.network.find_network("public", ignore_missing=False)
    server = conn.compute.create_server(name=f"fip-{uuid.uuid4().hex[:6]}", image_id=image(cloud),
                                        flavor_id="42", networks=[{"uuid": net.id}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    port = next(iter(conn.network.ports(device_id=server.id)))
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)

    def floating() -> list[str]:
        addresses = conn.compute.get_server(server.id).addresses.get("private", [])
        return [a["addr"] for a in addresses if a.get("OS-EXT-IPS:type") == "floating"]

    wait_for("the floating address", lambda: floating() == [fip.floating_ip_address])
    with compute.session() as s:  # as if the event of the association had never come
        row = s.get(Instance, server.id)
        row.addresses = {name: [a for a in entries if a.get("OS-EXT-IPS:type") != "floating"]
                         for name, entries in row.addresses.items()}
    # (The next pass may already have put it back by now: what counts is that it comes back.)
    wait_for("the floating address back", lambda: floating() == [fip.floating_ip_address])
    conn.network.delete_ip(fip)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)


class DroppingBus:
    """The compute conductor's bus, losing the first put of one instance after the publish succeeded."""

    def __init__(self, bus: Any, instance_id: Callable[[], str | None]) -> None:
        self.bus, self.instance_id, self.dropped = bus, instance_id, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)

    def _first_put(self, message: dict[str, Any]) -> bool:
        if (not self.dropped and message.get("op") == "put" and message.get("id")
                and message.get("id") == self.instance_id()):
            self.dropped += 1
            return True
        return False

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if not self._first_put(message):
            await self.bus.publish(topic, message)


class RefusingBus(DroppingBus):
    """The compute conductor's bus, refusing the first put of one instance as a broker that is away does
    (``RabbitBus`` raises ``BusUnavailable``, a ``ConnectionError``)."""

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if self._first_put(message):
            raise ConnectionError("the broker is away")
        await self.bus.publish(topic, message)


def _boot_through(cloud: LiveCloud, bus: type[DroppingBus]) -> None:
    """Boot one server with the conductor's bus wrapped in ``bus``: it goes ACTIVE, its first put touched once."""
    conn = cloud.conn("demo")
    conductor = cloud.cloud.runtime.services["compute"].conductor  # type: ignore[union-attr]
    net = conn.network.find_network("private", ignore_missing=False)
    ids: list[str] = []
    conductor.bus = bus(conductor.bus, lambda: ids[0] if ids else None)
    try:
        server = conn.compute.create_server(name=f"bus-{uuid.uuid4().hex[:6]}", image_id=image(cloud),
                                            flavor_id="42", networks=[{"uuid": net.id}])
        ids.append(server.id)
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
        assert conductor.bus.dropped == 1
    finally:
        conductor.bus = conductor.bus.bus
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)


def test_compute_converges_after_the_bus_lost_the_document(cloud: LiveCloud) -> None:
    """Published (and marked), but never delivered: the periodic per-host sync sends it again."""
    _boot_through(cloud, DroppingBus)


def test_a_build_whose_publish_fails_is_published_again_not_failed(cloud: LiveCloud) -> None:
    """The broker refused the build's put: the build stays, and the publisher sends the put again."""
    _boot_through(cloud, RefusingBus)


def test_volume_converges_after_a_crash_before_the_publish(cloud: LiveCloud, crashes: Crashes) -> None:
    conn = cloud.conn("demo")
    crashes.wanted.add(("volume", "volume:"))
    vol = conn.block_storage.create_volume(size=1, name=f"crash-{uuid.uuid4().hex[:6]}")
    conn.block_storage.wait_for_status(vol, status="available", wait=30, interval=0.1)
    assert crashes.hit == [("volume", "volume:")]
    crashes.wanted.add(("volume", vol.id))
    conn.block_storage.extend_volume(vol, 2)
    wait_for("extended volume", lambda: (v := conn.block_storage.get_volume(vol)).status == "available"
             and v.size == 2)
    assert crashes.hit[-1] == ("volume", vol.id)
    conn.block_storage.delete_volume(vol)
    conn.block_storage.wait_for_delete(vol, wait=30, interval=0.1)


def test_network_converges_after_a_crash_before_the_publish(cloud: LiveCloud, crashes: Crashes) -> None:
    """A port bound to this host: its document reaches the agent although its first publish died."""
    from tinystack.network.agent import NetworkAgent

    svc = cloud.cloud.runtime.services["network"]  # type: ignore[union-attr]
    admin = cloud.conn("admin")
    private = admin.network.find_network("private", ignore_missing=False)
    ctx = RequestContext(user_id="nova", project_id=admin.current_project_id, roles=("admin",))
    agent = cloud.agent(NetworkAgent, cloud.host)
    crashes.wanted.add(("network", "port:"))
    port = svc.create_port(ctx, {"port": {"network_id": private.id, "device_owner": "compute:nova",
                                          "binding:host_id": cloud.host}})
    # The pass that dies may come after a host sync already carried the new document (both run each interval).
    wait_for("the port's publish to die", lambda: crashes.hit)
    wait_for("port document on the agent", lambda: port["id"] in agent.docs["port"])
    assert crashes.hit == [("network", "port:")]
    svc.delete_port(ctx, port["id"])
    wait_for("port document removed", lambda: port["id"] not in agent.docs["port"])
