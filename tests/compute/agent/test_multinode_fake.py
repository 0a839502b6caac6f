"""A two-node cloud in one process with the fake drivers: openstackclient's cold migration (VERIFY_RESIZE, then
confirm or revert), live migration, a live migration whose destination cannot take the guest, and one whose
first publish dies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.fake import FakeDriver
from tinystack.compute.models import Instance
from tinystack.core import desired

pytestmark = [pytest.mark.api, pytest.mark.e2e]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    # Publisher passes every second: a publish that dies (the crash test) is made again soon.
    c = LiveCloud(Path(tmp_path_factory.mktemp("multinode")), nodes=2, network__driver="fake",
                  desired__sync_interval="1")
    try:
        c.conn("admin").image.create_image(name="fake-img", data=b"\0" * 4096, disk_format="raw",
                                           container_format="bare", visibility="public")
        yield c
    finally:
        c.stop()


def wait_for(cloud: LiveCloud, name: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        server: dict[str, Any] = cloud.cli_json("server", "show", name)
        if server["status"] == status and not server.get("OS-EXT-STS:task_state"):
            return server
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} stayed {server['status']}/{server.get('OS-EXT-STS:task_state')}, not {status}")
        time.sleep(0.3)


def migrations(cloud: LiveCloud, name: str) -> list[dict[str, Any]]:
    return list(cloud.cli_json("server", "migration", "list", "--server", name))


def fake_driver(cloud: LiveCloud, host: str) -> FakeDriver:
    agent = cloud.agent(ComputeAgent, host)
    assert isinstance(agent.driver, FakeDriver)
    return agent.driver


def port_binding(cloud: LiveCloud, server: str) -> dict[str, Any]:
    port = cloud.cli_json("port", "list", "--server", server)[0]
    shown: dict[str, Any] = cloud.cli_json("port", "show", port["ID"])
    return shown


def test_both_nodes_are_listed(cloud: LiveCloud) -> None:
    assert cloud.hosts == [cloud.host, f"{cloud.host}-2"]
    listed = cloud.cli_json("hypervisor", "list")
    assert {h["Hypervisor Hostname"] for h in listed} == set(cloud.hosts)
    # Each node shows the underlay address other nodes reach it on (tinystack/nodes.py gives them in order).
    assert {h["Hypervisor Hostname"]: h["Host IP"] for h in listed} == {cloud.host: "10.250.0.1",
                                                                        f"{cloud.host}-2": "10.250.0.2"}
    services = {s["Host"] for s in cloud.cli_json("compute", "service", "list", "--service", "nova-compute")}
    assert services == set(cloud.hosts)
    agents = {a["Host"] for a in cloud.cli_json("network", "agent", "list")}
    assert agents == set(cloud.hosts)


def test_cold_migration_confirm_and_revert(cloud: LiveCloud) -> None:
    one, two = cloud.hosts
    cloud.cli("server", "create", "--image", "fake-img", "--flavor", "m1.tiny", "--network", "private",
              "--availability-zone", f"nova:{one}", "--wait", "cold")
    assert cloud.cli_json("server", "show", "cold")["OS-EXT-SRV-ATTR:host"] == one
    cloud.cli("server", "migrate", "cold")
    server = wait_for(cloud, "cold", "VERIFY_RESIZE")
    assert server["OS-EXT-SRV-ATTR:host"] == two
    assert fake_driver(cloud, two).guests["" + server["id"]].power_state == 1
    assert server["id"] not in fake_driver(cloud, one).guests
    assert migrations(cloud, "cold")[0]["Status"] == "finished"
    assert port_binding(cloud, "cold")["binding_host_id"] == two
    cloud.cli("server", "resize", "confirm", "cold")
    assert wait_for(cloud, "cold", "ACTIVE")["OS-EXT-SRV-ATTR:host"] == two
    assert migrations(cloud, "cold")[0]["Status"] == "confirmed"

    cloud.cli("server", "migrate", "cold")
    assert wait_for(cloud, "cold", "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"] == one
    cloud.cli("server", "resize", "revert", "cold")
    server = wait_for(cloud, "cold", "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == two
    assert fake_driver(cloud, two).guests[server["id"]].power_state == 1
    assert server["id"] not in fake_driver(cloud, one).guests
    assert [m["Status"] for m in migrations(cloud, "cold")] == ["reverted", "confirmed"]
    assert port_binding(cloud, "cold")["binding_host_id"] == two
    cloud.cli("server", "delete", "--wait", "cold")


def test_live_migration_and_a_failed_one(cloud: LiveCloud) -> None:
    one, two = cloud.hosts
    cloud.cli("server", "create", "--image", "fake-img", "--flavor", "m1.tiny", "--network", "private",
              "--availability-zone", f"nova:{one}", "--wait", "live")
    server_id = cloud.cli_json("server", "show", "live")["id"]
    guest = fake_driver(cloud, one).guests[server_id]
    cloud.cli("server", "migrate", "--live-migration", "--host", two, "--wait", "live")
    server = wait_for(cloud, "live", "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == two
    assert fake_driver(cloud, two).guests[server_id] is guest and guest.boots == 1  # moved, never rebooted
    listed = migrations(cloud, "live")
    assert listed[0]["Status"] == "completed" and listed[0]["Type"] == "live-migration"
    assert listed[0]["Source Compute"] == one and listed[0]["Dest Compute"] == two
    port = port_binding(cloud, "live")
    assert port["binding_host_id"] == two and "migrating_to" not in (port["binding_profile"] or {})

    # The destination cannot start the guest's QEMU: the guest stays, running, where it is.
    fake_driver(cloud, one).fail_on["prepare_incoming"] = DriverError("QEMU failed to start")
    try:
        cloud.cli("server", "migrate", "--live-migration", "--host", one, "live")
        deadline = time.monotonic() + 30
        while migrations(cloud, "live")[0]["Status"] != "error":
            assert time.monotonic() < deadline, migrations(cloud, "live")
            time.sleep(0.3)
    finally:
        del fake_driver(cloud, one).fail_on["prepare_incoming"]
    server = wait_for(cloud, "live", "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == two and guest.power_state == 1 and guest.host == two
    port = port_binding(cloud, "live")
    assert port["binding_host_id"] == two and "migrating_to" not in (port["binding_profile"] or {})
    cloud.cli("server", "delete", "--wait", "live")


def test_live_migration_survives_a_crash_before_its_first_publish(cloud: LiveCloud) -> None:
    """The live migration's first step (ports bound on the destination, the destination's put) is the row's
    work, not a send made once by the API process: the publish that dies before it is made again."""
    one, two = cloud.hosts
    cloud.cli("server", "create", "--image", "fake-img", "--flavor", "m1.tiny", "--network", "private",
              "--availability-zone", f"nova:{one}", "--wait", "crashy")
    server_id = cloud.cli_json("server", "show", "crashy")["id"]
    compute = cloud.cloud.runtime.services["compute"]  # type: ignore[union-attr]
    died: list[str] = []

    def crash_the_first_step(service: str, key: str) -> None:
        if service != "compute" or key != server_id or died:
            return
        with compute.session() as s:
            mig = s.get(Instance, server_id).doc.get("migration") or {}
        if mig.get("stage") == "bind":
            died.append(str(mig["id"]))
            raise desired.SimulatedCrash

    desired.before_publish = crash_the_first_step
    try:
        cloud.cli("server", "migrate", "--live-migration", "--host", two, "crashy")
        server = wait_for(cloud, "crashy", "ACTIVE")
    finally:
        desired.before_publish = None
    assert died, "the first step's publish never ran"
    assert server["OS-EXT-SRV-ATTR:host"] == two and server_id in fake_driver(cloud, two).guests
    assert migrations(cloud, "crashy")[0]["Status"] == "completed"
    port = port_binding(cloud, "crashy")
    assert port["binding_host_id"] == two and "migrating_to" not in (port["binding_profile"] or {})
    cloud.cli("server", "delete", "--wait", "crashy")
