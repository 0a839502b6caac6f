"""Servers through openstacksdk and raw HTTP against a live cloud with a fake-driver agent."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


class Nova:
    """Raw HTTP against the compute endpoint with one user's token."""

    def __init__(self, live: LiveCloud, cloud: str, version: str = "2.96") -> None:
        self.conn = live.conn(cloud)  # a cloud of clouds.yaml (LiveCloud.project_conn adds some)
        self.base = live.url("compute")
        self.headers = {"X-Auth-Token": self.conn.auth_token, "OpenStack-API-Version": f"compute {version}"}

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def demo(live: LiveCloud) -> Nova:
    return Nova(live, "demo")


@pytest.fixture(scope="module")
def admin(live: LiveCloud) -> Nova:
    return Nova(live, "admin")


def boot(live: LiveCloud, image_id: str, name: str, cloud: str = "demo", **kw: Any) -> Any:
    conn = live.conn(cloud)
    server = conn.compute.create_server(name=name, image_id=image_id, flavor_id=kw.pop("flavor", "42"),
                                        networks=kw.pop("networks", "none"), **kw)
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)


def wait(live: LiveCloud, server: Any, status: str, cloud: str = "demo") -> Any:
    conn = live.conn(cloud)
    return conn.compute.wait_for_server(conn.compute.get_server(server.id), status=status, wait=30, interval=0.1)


def test_versions_and_request_ids(live: LiveCloud) -> None:
    r = requests.get(live.url("compute"), timeout=10)
    assert r.json()["version"]["min_version"] == "2.1"
    assert r.json()["version"]["version"] == "2.96"
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]
    assert requests.get(live.url("compute").rsplit("/v2.1", 1)[0] + "/", timeout=10).status_code == 200


def test_create_shows_nova_fields(live: LiveCloud, fake_host: str, image_id: str, admin: Nova, demo: Nova) -> None:
    server = boot(live, image_id, "fields", metadata={"a": "b"})
    own = demo("GET", f"/servers/{server.id}").json()["server"]
    assert own["OS-EXT-STS:vm_state"] == "active" and own["OS-EXT-STS:power_state"] == 1
    assert own["hostId"] and "OS-EXT-SRV-ATTR:host" not in own
    assert own["flavor"]["original_name"] == "m1.nano" and own["metadata"] == {"a": "b"}
    seen = admin("GET", f"/servers/{server.id}").json()["server"]
    assert seen["OS-EXT-SRV-ATTR:host"] == fake_host
    actions = demo("GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in actions] == ["create"]
    live.conn("demo").compute.delete_server(server)


def test_power_actions_walk_nova_states(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    conn = live.conn("demo")
    server = boot(live, image_id, "actions")
    conn.compute.stop_server(server)
    assert wait(live, server, "SHUTOFF").power_state == 4
    r = demo("POST", f"/servers/{server.id}/action", json={"os-stop": None})
    assert r.status_code == 409 and "conflictingRequest" in r.json()
    conn.compute.start_server(server)
    wait(live, server, "ACTIVE")
    conn.compute.reboot_server(server, "HARD")
    wait(live, server, "ACTIVE")
    conn.compute.pause_server(server)
    wait(live, server, "PAUSED")
    conn.compute.unpause_server(server)
    wait(live, server, "ACTIVE")
    conn.compute.suspend_server(server)
    wait(live, server, "SUSPENDED")
    conn.compute.resume_server(server)
    wait(live, server, "ACTIVE")
    conn.compute.rescue_server(server)
    wait(live, server, "RESCUE")
    conn.compute.unrescue_server(server)
    wait(live, server, "ACTIVE")
    names = [a["action"] for a in demo("GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]]
    assert names[0] == "unrescue" and names[-1] == "create" and "reboot" in names
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)


def test_resize_confirm_and_revert(live: LiveCloud, fake_host: str, image_id: str) -> None:
    conn = live.conn("demo")
    server = boot(live, image_id, "resizer")
    conn.compute.resize_server(server, "84")
    server = wait(live, server, "VERIFY_RESIZE")
    assert server.flavor["original_name"] == "m1.micro"
    conn.compute.revert_server_resize(server)
    server = wait(live, server, "ACTIVE")
    assert server.flavor["original_name"] == "m1.nano"
    conn.compute.resize_server(server, "84")
    wait(live, server, "VERIFY_RESIZE")
    conn.compute.confirm_server_resize(server)
    server = wait(live, server, "ACTIVE")
    assert server.flavor["original_name"] == "m1.micro"
    conn.compute.delete_server(server)


def test_lock_blocks_other_users_actions(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    server = boot(live, image_id, "locked")
    assert demo("POST", f"/servers/{server.id}/action", json={"lock": {"locked_reason": "x"}}).status_code == 202
    body = demo("GET", f"/servers/{server.id}").json()["server"]
    assert body["locked"] is True and body["locked_reason"] == "x"
    # The owner who locked it is refused too (Tempest's test_lock_unlock_server); only unlock is allowed.
    refused = demo("POST", f"/servers/{server.id}/action", json={"os-stop": None})
    assert refused.status_code == 409 and "locked" in refused.json()["conflictingRequest"]["message"]
    assert demo("GET", f"/servers/{server.id}").json()["server"]["status"] == "ACTIVE"
    assert demo("POST", f"/servers/{server.id}/action", json={"unlock": None}).status_code == 202
    live.conn("demo").compute.delete_server(server)


def test_snapshot_creates_image_record(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    server = boot(live, image_id, "snappy")
    r = demo("POST", f"/servers/{server.id}/action", json={"createImage": {"name": "snap1"}})
    assert r.status_code == 202, r.text
    new_id = r.json()["image_id"]
    image = live.conn("demo").image.get_image(new_id)
    assert image.name == "snap1" and image.instance_uuid == server.id
    wait(live, server, "ACTIVE")
    live.conn("demo").compute.delete_server(server)


def test_other_projects_server_is_404(live: LiveCloud, fake_host: str, image_id: str) -> None:
    server = boot(live, image_id, "private-one")
    alt = Nova(live, "alt_demo")
    assert alt("GET", f"/servers/{server.id}").status_code == 404
    assert alt("DELETE", f"/servers/{server.id}").json()["itemNotFound"]["code"] == 404
    assert server.id not in [s["id"] for s in alt("GET", "/servers").json()["servers"]]
    live.conn("demo").compute.delete_server(server)


@pytest.mark.parametrize("change,fault", [
    ({"imageRef": "00000000-0000-0000-0000-000000000000"}, "could not be found"),
    ({"flavorRef": "nope"}, "Flavor nope could not be found"),
    ({"networks": [{"uuid": "00000000-0000-0000-0000-000000000000"}]}, "could not be found"),
    ({"networks": [{"port": "00000000-0000-0000-0000-000000000000"}]}, "could not be found"),
    ({"user_data": "not base64!"}, "base 64"),
    ({"user_data": "A" * 65536}, "user_data"),
    ({"metadata": {"k" * 256: "v"}}, "metadata"),
    ({"key_name": "missing"}, "key_name"),
])
def test_bad_input_is_400_and_writes_nothing(live: LiveCloud, demo: Nova, image_id: str, change: dict[str, Any],
                                             fault: str) -> None:
    before = len(demo("GET", "/servers").json()["servers"])
    body = {"name": "bad", "imageRef": image_id, "flavorRef": "42", "networks": "none", **change}
    r = demo("POST", "/servers", json={"server": body})
    assert r.status_code == 400, r.text
    assert fault in r.json()["badRequest"]["message"]
    assert len(demo("GET", "/servers").json()["servers"]) == before


def test_flavor_below_image_minimums_is_400(live: LiveCloud, demo: Nova) -> None:
    conn = live.conn("admin")
    big = conn.image.create_image(name="needs-ram", data=b"\0" * 512, disk_format="raw", container_format="bare",
                                  visibility="public", min_ram=4096, min_disk=10)
    r = demo("POST", "/servers", json={"server": {"name": "x", "imageRef": big.id, "flavorRef": "1",
                                                   "networks": "none"}})
    assert r.status_code == 400 and "too small" in r.json()["badRequest"]["message"]


def test_quota_exceeded_is_403_overlimit(live: LiveCloud, admin: Nova, demo: Nova, image_id: str) -> None:
    project = demo.conn.current_project_id
    assert admin("PUT", f"/os-quota-sets/{project}", json={"quota_set": {"cores": 1}}).status_code == 200
    try:
        r = demo("POST", "/servers", json={"server": {"name": "q", "imageRef": image_id, "flavorRef": "3",
                                                       "networks": "none"}})
        assert r.status_code == 403, r.text
        assert "Quota exceeded for cores" in r.json()["overLimit"]["message"]
        detail = demo("GET", f"/os-quota-sets/{project}/detail").json()["quota_set"]
        assert detail["cores"]["limit"] == 1
    finally:
        admin("DELETE", f"/os-quota-sets/{project}")
    assert demo("GET", f"/os-quota-sets/{project}").json()["quota_set"]["cores"] == 20


def test_no_host_fits_gives_error_with_fault(live: LiveCloud, fake_host: str, admin: Nova, image_id: str) -> None:
    r = admin("POST", "/flavors", json={"flavor": {"name": "huge", "ram": 50000, "vcpus": 1, "disk": 1}})
    assert r.status_code == 200, r.text
    fid = r.json()["flavor"]["id"]
    try:
        r = admin("POST", "/servers", json={"server": {"name": "huge", "imageRef": image_id, "flavorRef": fid,
                                                        "networks": "none"}})
        assert r.status_code == 202
        server = admin.conn.compute.wait_for_server(admin.conn.compute.get_server(r.json()["server"]["id"]),
                                                    status="ERROR", failures=[], wait=30, interval=0.1)
        assert "No valid host" in server.fault["message"]
        admin.conn.compute.delete_server(server)
        admin.conn.compute.wait_for_delete(server, wait=30, interval=0.1)
    finally:
        admin("DELETE", f"/flavors/{fid}")


def test_list_filters(live: LiveCloud, fake_host: str, image_id: str, demo: Nova, admin: Nova) -> None:
    a = boot(live, image_id, "filter-alpha")
    b = boot(live, image_id, "filter-beta", flavor="84")
    try:
        names = {s["name"] for s in demo("GET", "/servers/detail?name=^filter-a").json()["servers"]}
        assert names == {"filter-alpha"}
        assert {s["name"] for s in demo("GET", "/servers?flavor=84").json()["servers"]} >= {"filter-beta"}
        assert demo("GET", "/servers?status=ACTIVE").json()["servers"]
        hosts = admin("GET", f"/servers/detail?all_tenants=1&host={fake_host}").json()["servers"]
        assert {a.id, b.id} <= {s["id"] for s in hosts}
        page = demo("GET", "/servers?limit=1").json()
        assert len(page["servers"]) == 1 and "servers_links" in page
    finally:
        live.conn("demo").compute.delete_server(a)
        live.conn("demo").compute.delete_server(b)


def test_addresses_follow_floating_ips(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    """Associating a floating IP shows it in the server's addresses (Nova learns it from Neutron's
    network-changed event); disassociating removes it."""
    import time

    conn = live.conn("demo")
    net = conn.network.find_network("private")
    public = conn.network.find_network("public")
    assert net is not None and public is not None
    server = boot(live, image_id, "fip-addresses", networks=[{"uuid": net.id}])
    port = next(iter(conn.network.ports(device_id=server.id)))
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)

    def kinds() -> list[tuple[str, str]]:
        addresses = demo("GET", f"/servers/{server.id}").json()["server"]["addresses"]["private"]
        return sorted((a["OS-EXT-IPS:type"], a["addr"]) for a in addresses)

    def settle(want: list[tuple[str, str]]) -> None:
        deadline = time.monotonic() + 10
        while kinds() != want:
            assert time.monotonic() < deadline, (kinds(), want)
            time.sleep(0.1)

    fixed = port.fixed_ips[0]["ip_address"]
    settle([("fixed", fixed), ("floating", fip.floating_ip_address)])
    conn.network.update_ip(fip, port_id=None)
    settle([("fixed", fixed)])
    conn.network.update_ip(fip, port_id=port.id)
    settle([("fixed", fixed), ("floating", fip.floating_ip_address)])
    conn.network.delete_ip(fip)
    settle([("fixed", fixed)])
    conn.compute.delete_server(server)


def test_rebuild_answers_the_basic_view_before_2_75(live: LiveCloud, fake_host: str, image_id: str) -> None:
    net = live.conn("demo").network.find_network("private")
    assert net is not None
    server = boot(live, image_id, "rebuilt", networks=[{"uuid": net.id}])
    body = {"rebuild": {"imageRef": image_id}}
    old = Nova(live, "demo", "2.1")("POST", f"/servers/{server.id}/action", json=body)
    assert old.status_code == 202, old.text
    assert "adminPass" in old.json()["server"] and "OS-EXT-STS:vm_state" not in old.json()["server"]
    assert all(set(a) == {"version", "addr"} for addrs in old.json()["server"]["addresses"].values() for a in addrs)
    wait(live, server, "ACTIVE")
    new = Nova(live, "demo", "2.75")("POST", f"/servers/{server.id}/action", json=body)
    assert new.status_code == 202, new.text
    assert "OS-EXT-STS:vm_state" in new.json()["server"]
    wait(live, server, "ACTIVE")
    live.conn("demo").compute.delete_server(server)


def test_rescue_from_a_named_image(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    """``rescue_image_ref`` is what the rescue disk is made from (the agent's document carries it); an image
    the caller cannot see, or none at all, is a 400 and leaves the server as it was."""
    from tinystack.compute.agent import ComputeAgent

    conn = live.conn("demo")
    server = boot(live, image_id, "rescue-img")
    rescue_image = conn.image.create_image(name="rescue-img", data=b"\0" * 4096, disk_format="raw",
                                           container_format="bare")
    hidden = live.project_conn("rescue-other").image.create_image(name="theirs", data=b"\0" * 4096,
                                                                  disk_format="raw", container_format="bare")
    try:
        for ref in (hidden.id, "00000000-0000-0000-0000-000000000000"):
            r = demo("POST", f"/servers/{server.id}/action", json={"rescue": {"rescue_image_ref": ref}})
            assert r.status_code == 400, r.text
            assert conn.compute.get_server(server.id).status == "ACTIVE"
        r = demo("POST", f"/servers/{server.id}/action", json={"rescue": {"rescue_image_ref": rescue_image.id}})
        assert r.status_code == 200 and r.json()["adminPass"], r.text
        wait(live, server, "RESCUE")
        guest = live.agent(ComputeAgent, fake_host).driver.storage.guests[server.id]
        assert guest.rescue and guest.spec["rescue_image"]["id"] == rescue_image.id
        conn.compute.unrescue_server(server)
        wait(live, server, "ACTIVE")
        assert "rescue_image" not in live.agent(ComputeAgent, fake_host).driver.storage.guests[server.id].spec
    finally:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=30, interval=0.1)
        conn.image.delete_image(rescue_image)
