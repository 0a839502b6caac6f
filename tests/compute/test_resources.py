"""Flavors, keypairs, limits, zones, admin views and the network path, with the real CLI and SDK."""

from __future__ import annotations

import pytest

from tests.compute.test_servers import Nova, boot, wait
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def test_default_flavors_via_cli(live: LiveCloud) -> None:
    rows = {f["Name"]: f for f in live.cli_json("flavor", "list", cloud="demo")}
    assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge", "m1.nano", "m1.micro", "cirros256",
            "ds512M", "ds1G", "ds2G"} <= set(rows)
    assert rows["m1.tiny"]["RAM"] == 512 and rows["m1.nano"]["ID"] == "42" and rows["ds2G"]["VCPUs"] == 2


def test_private_flavor_access_and_extra_specs(live: LiveCloud) -> None:
    demo_project = live.conn("demo").current_project_id
    f = live.cli_json("flavor", "create", "--private", "--ram", "64", "--disk", "1", "--vcpus", "1",
                      "--property", "hw:cpu_policy=shared", "priv1")
    try:
        assert "priv1" not in {x["Name"] for x in live.cli_json("flavor", "list", cloud="demo")}
        live.cli("flavor", "set", "--project", demo_project, "priv1")
        assert "priv1" in {x["Name"] for x in live.cli_json("flavor", "list", "--all", cloud="demo")}
        shown = live.cli_json("flavor", "show", "priv1")
        assert shown["properties"] == {"hw:cpu_policy": "shared"}
        r = Nova(live, "demo")("POST", "/flavors", json={"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0}})
        assert r.status_code == 403 and "forbidden" in r.json()
    finally:
        live.cli("flavor", "delete", f["id"])


def test_keypair_generate_and_import(live: LiveCloud, tmp_path: pytest.TempPathFactory) -> None:
    out = live.cli("keypair", "create", "gen1", cloud="demo").stdout
    assert "PRIVATE KEY" in out
    conn = live.conn("demo")
    kp = conn.compute.get_keypair("gen1")
    assert kp.fingerprint.count(":") == 15
    pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG2rS1vC9L+6cUGnYEsT3QmZ7E1D6mKhZ2D1qBgmf5fH test"
    imported = conn.compute.create_keypair(name="imp1", public_key=pub)
    assert imported.public_key == pub and imported.private_key is None
    assert live.conn("alt_demo").compute.find_keypair("imp1") is None
    bad = Nova(live, "demo")("POST", "/os-keypairs", json={"keypair": {"name": "bad", "public_key": "ssh-rsa nope"}})
    assert bad.status_code == 400
    conn.compute.delete_keypair("gen1")
    conn.compute.delete_keypair("imp1")


def test_limits_quotas_zones(live: LiveCloud) -> None:
    limits = live.cli_json("limits", "show", "--absolute", cloud="demo")
    names = {row["Name"]: row["Value"] for row in limits}
    assert names["max_total_instances"] == 10 and names["max_total_cores"] == 20
    project = live.conn("demo").current_project_id
    q = live.cli_json("quota", "show", "--compute", project)
    assert any(row.get("Resource") == "ram" or row.get("ram") for row in (q if isinstance(q, list) else [q]))
    zones = live.cli_json("availability", "zone", "list", "--compute", cloud="demo")
    assert any(z["Zone Name"] == "nova" for z in zones)


def test_admin_views(live: LiveCloud, fake_host: str) -> None:
    services = live.cli_json("compute", "service", "list")
    compute = [s for s in services if s["Host"] == fake_host and s["Binary"] == "nova-compute"]
    assert compute and compute[0]["State"] == "up"
    hyps = live.cli_json("hypervisor", "list")
    assert fake_host in {h["Hypervisor Hostname"] for h in hyps}
    live.cli("compute", "service", "set", "--disable", "--disable-reason", "maint", fake_host, "nova-compute")
    try:
        row = next(s for s in live.cli_json("compute", "service", "list")
                   if s["Host"] == fake_host and s["Binary"] == "nova-compute")
        assert row["Status"] == "disabled"
    finally:
        live.cli("compute", "service", "set", "--enable", fake_host, "nova-compute")


def test_server_on_private_network_via_cli(live: LiveCloud, fake_host: str, image_id: str) -> None:
    nets = live.cli_json("network", "list", cloud="demo")
    private = [n for n in nets if n["Name"] == "private"]
    if not private:
        pytest.skip("the network service has no DevStack 'private' network here")
    live.cli("server", "create", "--image", image_id, "--flavor", "m1.nano", "--network", "private", "--wait",
             "netvm", cloud="demo")
    try:
        server = live.cli_json("server", "show", "netvm", cloud="demo")
        assert server["status"] == "ACTIVE"
        assert "private" in str(server["addresses"])
        ports = live.conn("demo").network.ports(device_id=server["id"])
        port = next(iter(ports))
        assert port.device_owner.startswith("compute:") and port.binding_host_id in (None, "", fake_host)
    finally:
        live.cli("server", "delete", "--wait", "netvm", cloud="demo")
    assert not list(live.conn("demo").network.ports(device_id=server["id"]))


def test_shelve_and_unshelve(live: LiveCloud, fake_host: str, image_id: str) -> None:
    conn = live.conn("demo")
    server = boot(live, image_id, "shelver")
    conn.compute.shelve_server(server)
    server = wait(live, server, "SHELVED_OFFLOADED")
    conn.compute.unshelve_server(server)
    wait(live, server, "ACTIVE")
    conn.compute.delete_server(server)


def test_nova_image_proxy(live: LiveCloud, image_id: str) -> None:
    import requests

    token = live.conn("admin").auth_token
    url = live.url("compute")
    listed = requests.get(f"{url}/images/detail", headers={"X-Auth-Token": token}, timeout=10).json()["images"]
    mine = next(i for i in listed if i["id"] == image_id)
    assert mine["status"] == "ACTIVE" and mine["OS-EXT-IMG-SIZE:size"] == 4096
    shown = requests.get(f"{url}/images/{image_id}", headers={"X-Auth-Token": token}, timeout=10)
    assert shown.status_code == 200 and shown.json()["image"]["name"] == "compute-test-img"
    newer = requests.get(f"{url}/images/{image_id}", timeout=10,
                         headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.36"})
    assert newer.status_code == 404 and "itemNotFound" in newer.json()
