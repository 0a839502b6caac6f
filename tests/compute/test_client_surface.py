"""What unmodified clients call beyond Tempest: stored key material, a server's security groups, the legacy
extension list, the image metadata proxy and Nova's network proxies (issue 18), with their negative cases."""

from __future__ import annotations

import time

import pytest

from tests.compute.test_servers import Nova, boot
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG2rS1vC9L+6cUGnYEsT3QmZ7E1D6mKhZ2D1qBgmf5fH surface@test\n"


def test_imported_public_key_is_returned_exactly(live: LiveCloud, tmp_path: pytest.TempPathFactory) -> None:
    conn = live.conn("demo")
    kp = conn.compute.create_keypair(name="exact1", public_key=KEY)
    try:
        assert conn.compute.get_keypair("exact1").public_key == KEY  # the trailing newline kept
        keyfile = tmp_path / "k.pub"  # type: ignore[operator]
        keyfile.write_text(KEY)
        live.cli("keypair", "create", "--public-key", str(keyfile), "exact2", cloud="demo")
        assert conn.compute.get_keypair("exact2").public_key == KEY
        assert kp.fingerprint == conn.compute.get_keypair("exact2").fingerprint
    finally:
        conn.compute.delete_keypair("exact1")
        conn.compute.delete_keypair("exact2", ignore_missing=True)


def test_server_security_groups(live: LiveCloud, fake_host: str, image_id: str) -> None:
    conn = live.conn("demo")
    net = conn.network.find_network("private")
    sg = conn.network.create_security_group(name="surface-sg")
    conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="tcp",
                                            port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0")
    conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="icmp",
                                            remote_ip_prefix="0.0.0.0/0")
    server = boot(live, image_id, "sg-surface", networks=[{"uuid": net.id}], security_groups=[{"name": sg.name}])
    try:
        for version in ("2.1", "2.96"):
            r = Nova(live, "demo", version)("GET", f"/servers/{server.id}/os-security-groups")
            assert r.status_code == 200, r.text
            groups = {g["name"]: g for g in r.json()["security_groups"]}
            assert set(groups) == {"surface-sg"}
            rules = {(x["ip_protocol"], x["from_port"], x["to_port"], x["ip_range"].get("cidr"))
                     for x in groups["surface-sg"]["rules"]}
            assert rules == {("tcp", 22, 22, "0.0.0.0/0"), ("icmp", -1, -1, "0.0.0.0/0")}
            assert groups["surface-sg"]["tenant_id"] == conn.current_project_id
        # The SDK call the Ansible collection makes on every run.
        fetched = conn.compute.fetch_server_security_groups(conn.compute.get_server(server.id))
        assert [g["name"] for g in fetched.security_groups] == ["surface-sg"]
        # Another project's server is not found, as every other server call.
        alt = Nova(live, "alt_demo")("GET", f"/servers/{server.id}/os-security-groups")
        assert alt.status_code == 404 and "itemNotFound" in alt.json()
    finally:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=30)
        conn.network.delete_security_group(sg)


def test_extensions_list(live: LiveCloud) -> None:
    rows = live.cli_json("extension", "list", "--compute", cloud="demo")
    aliases = {r["Alias"] for r in rows}
    assert {"os-keypairs", "os-security-groups", "os-server-groups", "os-floating-ip-pools"} <= aliases
    r = Nova(live, "demo")("GET", "/extensions/os-keypairs")
    assert r.status_code == 200 and r.json()["extension"]["alias"] == "os-keypairs"
    assert Nova(live, "demo")("GET", "/extensions/os-nope").status_code == 404


def _mine(metadata: dict[str, str]) -> dict[str, str]:
    """The properties the test set (openstacksdk adds its own ``owner_specified.*`` ones at upload)."""
    return {k: v for k, v in metadata.items() if not k.startswith("owner_specified.")}


def test_image_metadata_proxy(live: LiveCloud) -> None:
    conn = live.conn("demo")
    image = conn.image.create_image(name="meta-proxy", data=b"\0" * 512, disk_format="raw", container_format="bare")
    try:
        conn.compute.set_image_metadata(image.id, os_distro="cirros", purpose="test")
        assert _mine(conn.compute.get_image_metadata(image.id).metadata) == {"os_distro": "cirros", "purpose": "test"}
        conn.compute.delete_image_metadata(image.id, ["purpose"])
        assert _mine(conn.compute.get_image_metadata(image.id).metadata) == {"os_distro": "cirros"}
        nova = Nova(live, "demo", "2.1")
        r = nova("PUT", f"/images/{image.id}/metadata", json={"metadata": {"a": "1"}})
        assert r.status_code == 200 and r.json()["metadata"] == {"a": "1"}
        assert nova("GET", f"/images/{image.id}/metadata/a").json() == {"meta": {"a": "1"}}
        assert nova("PUT", f"/images/{image.id}/metadata/a", json={"meta": {"b": "2"}}).status_code == 400
        assert nova("POST", f"/images/{image.id}/metadata", json={"metadata": {"x": 5}}).status_code == 400
        assert nova("GET", f"/images/{image.id}/metadata/nope").status_code == 404
        assert Nova(live, "demo", "2.39")("GET", f"/images/{image.id}/metadata").status_code == 404
        # A private image of another project is not found; writing is the image service's decision.
        assert Nova(live, "alt_demo", "2.1")("GET", f"/images/{image.id}/metadata").status_code == 404
        assert Nova(live, "alt_demo", "2.1")("POST", f"/images/{image.id}/metadata",
                                             json={"metadata": {"x": "y"}}).status_code == 404
        assert conn.compute.get_image_metadata(image.id).metadata == {"a": "1"}
    finally:
        conn.image.delete_image(image)


def test_network_proxies(live: LiveCloud, fake_host: str, image_id: str) -> None:
    conn = live.conn("demo")
    nova = Nova(live, "demo", "2.1")
    pools = nova("GET", "/os-floating-ip-pools").json()["floating_ip_pools"]
    assert {"name": "public"} in pools
    nets = {n["label"]: n for n in nova("GET", "/os-networks").json()["networks"]}
    assert "private" in nets and nets["private"]["cidr"] is None
    one = nova("GET", f"/os-networks/{nets['private']['id']}").json()["network"]
    assert one["label"] == "private"
    assert nova("GET", "/os-networks/00000000-0000-0000-0000-000000000000").status_code == 404
    groups = nova("GET", "/os-security-groups").json()["security_groups"]
    assert "default" in {g["name"] for g in groups}
    assert all(g["tenant_id"] == conn.current_project_id for g in groups)
    assert Nova(live, "demo", "2.36")("GET", "/os-networks").status_code == 404

    net = conn.network.find_network("private")
    public = conn.network.find_network("public")
    server = boot(live, image_id, "fip-proxy", networks=[{"uuid": net.id}])
    port = next(iter(conn.network.ports(device_id=server.id)))
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    try:
        shown = conn.network.get_ip(fip.id)
        assert shown.port_details["device_id"] == server.id
        assert shown.port_details["network_id"] == net.id and shown.port_details["mac_address"] == port.mac_address
        listed = {f["id"]: f for f in nova("GET", "/os-floating-ips").json()["floating_ips"]}
        assert listed[fip.id]["instance_id"] == server.id and listed[fip.id]["pool"] == "public"
        assert listed[fip.id]["ip"] == fip.floating_ip_address
        assert nova("GET", f"/os-floating-ips/{fip.id}").json()["floating_ip"]["fixed_ip"] == port.fixed_ips[0][
            "ip_address"]
        assert Nova(live, "alt_demo", "2.1")("GET", f"/os-floating-ips/{fip.id}").status_code == 404
        updated = conn.network.update_ip(fip, port_id=None)
        assert updated.port_details is None
    finally:
        conn.network.delete_ip(fip)
        conn.compute.delete_server(server)
        deadline = time.monotonic() + 30
        while conn.compute.find_server(server.id) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
