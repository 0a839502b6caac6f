"""The rest of the compute API a user or admin reaches with openstackclient, on the fake-driver host: services,
hypervisors, zones, ports and security groups on a running server, reset-state, multi-create, console log and
password changes, with the refusals a non-admin gets."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def _wait(live: LiveCloud, name: str, status: str, cloud: str = "demo") -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        server: dict[str, Any] = live.cli_json("server", "show", name, cloud=cloud)
        if server["status"] == status:
            return server
        assert server["status"] != "ERROR" or status == "ERROR", server.get("fault")
        assert time.monotonic() < deadline, f"{name} stayed {server['status']}, wanted {status}"
        time.sleep(0.2)


def test_services_hypervisors_and_zones(live: LiveCloud, fake_host: str, image_id: str) -> None:
    services = live.cli_json("compute", "service", "list")
    mine = [s for s in services if s["Host"] == fake_host and s["Binary"] == "nova-compute"]
    assert len(mine) == 1 and mine[0]["State"] == "up" and mine[0]["Status"] == "enabled", services
    hypervisors = live.cli_json("hypervisor", "list")
    assert fake_host in {h["Hypervisor Hostname"] for h in hypervisors}
    shown = live.conn("admin").compute.find_hypervisor(fake_host, details=True)
    assert shown is not None and shown.state == "up" and shown.status == "enabled"
    zones = live.cli_json("availability", "zone", "list", "--compute")
    assert {"nova"} <= {z["Zone Name"] for z in zones if z["Zone Status"] == "available"}
    # A member cannot see or change services.
    assert live.cli("compute", "service", "list", cloud="demo", check=False).returncode != 0

    # A disabled host takes no new servers: the boot ends in ERROR with a fault, and enabling it again lets
    # the next boot through.
    live.cli("compute", "service", "set", "--disable", "--disable-reason", "maintenance", fake_host, "nova-compute")
    down = live.cli_json("compute", "service", "list", "--long")
    row = next(s for s in down if s["Host"] == fake_host and s["Binary"] == "nova-compute")
    assert row["Status"] == "disabled" and row["Disabled Reason"] == "maintenance"
    # The hypervisor follows its service, as Nova's does.
    hyp = live.cli_json("hypervisor", "show", fake_host)
    assert hyp["status"] == "disabled", hyp
    try:
        live.cli("server", "create", "--image", image_id, "--flavor", "m1.nano", "--no-network", "refused",
                 cloud="demo")
        refused = _wait(live, "refused", "ERROR")
        assert "No valid host" in refused["fault"]["message"]
    finally:
        live.cli("compute", "service", "set", "--enable", fake_host, "nova-compute")
    live.cli("server", "delete", "--wait", "refused", cloud="demo")
    live.cli("server", "create", "--image", image_id, "--flavor", "m1.nano", "--no-network", "admitted", cloud="demo")
    _wait(live, "admitted", "ACTIVE")
    live.cli("server", "delete", "--wait", "admitted", cloud="demo")


def test_hypervisor_servers_patterns_and_paging(live: LiveCloud, fake_host: str, image_id: str) -> None:
    """``with_servers`` and ``hypervisor_hostname_pattern`` (2.53+), the search and servers paths before 2.53,
    and limit/marker paging (2.33+), as openstackclient and openstacksdk call them."""
    live.cli("server", "create", "--image", image_id, "--flavor", "m1.nano", "--no-network", "--wait", "counted",
             cloud="demo")
    server = live.cli_json("server", "show", "counted", cloud="demo")
    try:
        admin = live.conn("admin")

        def get(path: str, mv: str) -> Any:
            r = admin.compute.get(path, microversion=mv)
            return r.status_code, r.json()

        status, body = get(f"/os-hypervisors?with_servers=true&hypervisor_hostname_pattern={fake_host}", "2.53")
        assert status == 200, body
        (hyp,) = [h for h in body["hypervisors"] if h["hypervisor_hostname"] == fake_host]
        assert server["id"] in {s["uuid"] for s in hyp["servers"]}, hyp
        status, body = get(f"/os-hypervisors/{hyp['id']}?with_servers=1", "2.88")
        assert status == 200 and "counted" in {s["name"] for s in body["hypervisor"]["servers"]}, body
        assert get("/os-hypervisors?hypervisor_hostname_pattern=no-such-host", "2.53")[0] == 404
        assert get("/os-hypervisors?with_servers=maybe", "2.53")[0] == 400
        assert get(f"/os-hypervisors?hypervisor_hostname_pattern={fake_host}&limit=1", "2.53")[0] == 400
        # Before 2.53: the path forms.
        status, body = get(f"/os-hypervisors/{fake_host}/servers", "2.52")
        assert status == 200 and server["id"] in {s["uuid"] for s in body["hypervisors"][0]["servers"]}, body
        status, body = get(f"/os-hypervisors/{fake_host}/search", "2.52")
        assert status == 200 and body["hypervisors"][0]["hypervisor_hostname"] == fake_host, body
        assert get(f"/os-hypervisors/{fake_host}/search", "2.53")[0] == 404
        # Paging: one page of one, then the rest after it; an unknown marker is a 400.
        every = [h["id"] for h in get("/os-hypervisors", "2.53")[1]["hypervisors"]]
        first = get("/os-hypervisors?limit=1", "2.53")[1]["hypervisors"]
        assert [h["id"] for h in first] == every[:1]
        rest = get(f"/os-hypervisors?marker={every[0]}", "2.53")[1]["hypervisors"]
        assert [h["id"] for h in rest] == every[1:]
        assert get("/os-hypervisors?marker=00000000-0000-0000-0000-000000000000", "2.53")[0] == 400
        # openstackclient's --matching and openstacksdk's pattern filter.
        assert [h["Hypervisor Hostname"] for h in live.cli_json("hypervisor", "list", "--matching", fake_host)] == [
            fake_host]
        assert [h.name for h in admin.compute.hypervisors(hypervisor_hostname_pattern=fake_host)] == [fake_host]
        # A member gets none of it.
        assert live.conn("demo").compute.get("/os-hypervisors", microversion="2.53").status_code == 403
    finally:
        live.cli("server", "delete", "--wait", "counted", cloud="demo")


def test_ports_and_groups_on_a_running_server(live: LiveCloud, fake_host: str, image_id: str) -> None:
    live.cli("server", "create", "--image", image_id, "--flavor", "m1.nano", "--network", "private", "nic",
             cloud="demo")
    server = _wait(live, "nic", "ACTIVE")
    port = live.cli_json("port", "create", "--network", "private", "extra", cloud="demo")
    live.cli("server", "add", "port", "nic", port["id"], cloud="demo")
    deadline = time.monotonic() + 15
    while live.cli_json("port", "show", port["id"], cloud="demo")["device_id"] != server["id"]:
        assert time.monotonic() < deadline, "the attached port never named the server as its device"
        time.sleep(0.2)
    interfaces = live.conn("demo").compute.server_interfaces(server["id"])
    assert port["id"] in {i.port_id for i in interfaces}
    live.cli("server", "remove", "port", "nic", port["id"], cloud="demo")
    deadline = time.monotonic() + 15
    while live.cli_json("port", "show", port["id"], cloud="demo")["device_id"]:
        assert time.monotonic() < deadline, "the detached port still names a device"
        time.sleep(0.2)

    live.cli("security", "group", "create", "extra-sg", cloud="demo")
    live.cli("server", "add", "security", "group", "nic", "extra-sg", cloud="demo")
    groups = {g["name"] for g in live.cli_json("server", "show", "nic", cloud="demo")["security_groups"]}
    assert groups == {"default", "extra-sg"}
    live.cli("server", "remove", "security", "group", "nic", "extra-sg", cloud="demo")
    groups = {g["name"] for g in live.cli_json("server", "show", "nic", cloud="demo")["security_groups"]}
    assert groups == {"default"}

    live.cli("console", "log", "show", "nic", cloud="demo")  # the fake driver writes no console; the API answers
    live.conn("demo").compute.change_server_password(server["id"], "s3cret-pass")
    live.cli("server", "delete", "--wait", "nic", cloud="demo")
    live.cli("port", "delete", port["id"], cloud="demo")
    live.cli("security", "group", "delete", "extra-sg", cloud="demo")


def test_reset_state_and_multi_create(live: LiveCloud, fake_host: str, image_id: str) -> None:
    live.cli("server", "create", "--image", image_id, "--flavor", "m1.nano", "--no-network", "--min", "2",
             "--max", "2", "twin", cloud="demo")
    twins = [s for s in live.cli_json("server", "list", "--name", "^twin", cloud="demo")]
    assert sorted(s["Name"] for s in twins) == ["twin-1", "twin-2"]
    for twin in twins:
        _wait(live, twin["ID"], "ACTIVE")
    # Only an admin resets a server's state (the admin names it by id: names resolve in one's own project).
    one = next(s["ID"] for s in twins if s["Name"] == "twin-1")
    assert live.cli("server", "set", "--auto-approve", "--state", "error", one, cloud="demo", check=False).returncode != 0
    live.cli("server", "set", "--auto-approve", "--state", "error", one)
    assert live.cli_json("server", "show", one, cloud="demo")["status"] == "ERROR"
    live.cli("server", "set", "--auto-approve", "--state", "active", one)
    assert live.cli_json("server", "show", one, cloud="demo")["status"] == "ACTIVE"
    live.cli("server", "delete", "--wait", "twin-1", "twin-2", cloud="demo")
