"""Unit tests of the dashboard's rules: sessions, CSRF, fault messages, the launch wizard's request, rule
templates and the topology layout."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from tinystack.dashboard import csrf
from tinystack.dashboard.client import endpoints, fault_message
from tinystack.dashboard.session import SessionStore
from tinystack.dashboard.views.flavor_access import known_project
from tinystack.dashboard.views.instances import interface_body, rescue_body
from tinystack.dashboard.views.launch import free_ports, metadata, server_body
from tinystack.dashboard.views.secgroups import rule_body
from tinystack.dashboard.views.topology import layout
from tinystack.dashboard.web import FormError, local_path

pytestmark = pytest.mark.unit


def test_sessions_expire_when_idle_or_when_the_token_does() -> None:
    store = SessionStore(idle=60)
    sess = store.new()
    assert store.get(sess.id) is sess and store.get("nope") is None and store.get(None) is None
    sess.touched -= 61
    assert store.get(sess.id) is None
    other = store.new()
    other.token, other.expires = "t", time.time() - 1
    assert store.get(other.id) is None


def test_renew_gives_a_new_id_and_csrf_secret_and_forgets_the_old() -> None:
    store = SessionStore()
    old = store.new()
    old.flash("info", "kept")
    new = store.renew(old)
    assert new.id != old.id and new.csrf != old.csrf
    assert store.get(old.id) is None and store.get(new.id) is new
    assert new.take_flashes() == [("info", "kept")] and new.take_flashes() == []


def test_the_store_drops_the_oldest_when_full() -> None:
    store = SessionStore(max_sessions=2)
    a, b, c = store.new(), store.new(), store.new()
    assert len(store) == 2 and store.get(a.id) is None and store.get(b.id) is b and store.get(c.id) is c


def test_csrf_allows_safe_methods_and_checks_the_rest() -> None:
    sess = SessionStore().new()

    def check(method: str, headers: dict[str, str], session: Any) -> bool:
        return asyncio.run(csrf.check(make_mocked_request(method, "/", headers=headers), session))

    assert check("GET", {}, None) and check("HEAD", {}, sess)
    assert not check("POST", {}, None) and not check("POST", {}, sess)
    assert not check("POST", {"X-CSRF-Token": "x"}, sess) and not check("DELETE", {"X-CSRF-Token": "x"}, sess)
    assert check("POST", {"X-CSRF-Token": sess.csrf}, sess)
    assert not sess.csrf_ok("") and not sess.csrf_ok(None) and sess.csrf_ok(sess.csrf)


@pytest.mark.parametrize(("status", "body", "message"), [
    (404, '{"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}', "Instance x could not be found."),
    (409, '{"NeutronError": {"type": "Conflict", "message": "In use.", "detail": ""}}', "In use."),
    (401, '{"error": {"code": 401, "title": "Unauthorized", "message": "Bad."}}', "Bad."),
    (400, '{"errors": [{"status": 400, "title": "Bad Request", "detail": "No."}]}', "No."),
    (404, "404 Not Found\n\nNo image found with ID y.\n", "No image found with ID y."),
])
def test_fault_messages_of_every_format(status: int, body: str, message: str) -> None:
    assert fault_message(status, body) == message


def test_endpoints_are_the_public_ones_of_the_region() -> None:
    catalog = [{"type": "compute", "endpoints": [
        {"interface": "internal", "region_id": "RegionOne", "url": "http://internal/"},
        {"interface": "public", "region_id": "Other", "url": "http://other/"},
        {"interface": "public", "region_id": "RegionOne", "url": "http://public/v2.1/"}]}]
    assert endpoints(catalog, "RegionOne") == {"compute": "http://public/v2.1"}


def _fields(**extra: str) -> dict[str, str]:
    return {"name": "vm", "flavor": "f1", "source_type": "image", "source_id": "img", **extra}


def test_the_wizard_boots_from_an_image_on_chosen_networks() -> None:
    body = server_body(_fields(key_name="k", user_data="#!/bin/sh\r\necho hi\r\n", config_drive="on"),
                       ["n1", "n2"], ["default", "web"])
    assert body["imageRef"] == "img" and body["flavorRef"] == "f1" and body["key_name"] == "k"
    assert body["networks"] == [{"uuid": "n1"}, {"uuid": "n2"}]
    assert body["security_groups"] == [{"name": "default"}, {"name": "web"}]
    assert base64.b64decode(body["user_data"]) == b"#!/bin/sh\necho hi\n" and body["config_drive"] is True
    assert body["min_count"] == body["max_count"] == 1


def test_the_wizard_boots_from_a_new_or_an_existing_volume() -> None:
    new = server_body(_fields(create_volume="on", volume_size="3", delete_on_termination="on"), [], [])
    assert "imageRef" not in new and new["networks"] == "auto"
    assert new["block_device_mapping_v2"] == [{"boot_index": 0, "uuid": "img", "source_type": "image",
                                               "destination_type": "volume", "volume_size": 3,
                                               "delete_on_termination": True}]
    old = server_body(_fields(source_type="volume", source_id="vol"), [], [])
    assert old["block_device_mapping_v2"][0]["source_type"] == "volume"


@pytest.mark.parametrize("extra", [{"name": ""}, {"count": "0"}, {"count": "x"}, {"source_id": ""},
                                   {"source_type": "floppy"}, {"create_volume": "on", "volume_size": "0"}])
def test_the_wizard_refuses_bad_input(extra: dict[str, str]) -> None:
    with pytest.raises(FormError):
        server_body(_fields(**extra), [], [])


def test_rule_templates() -> None:
    ssh = rule_body({"rule": "ssh"}, "g")
    assert (ssh["protocol"], ssh["port_range_min"], ssh["port_range_max"], ssh["direction"]) == ("tcp", 22, 22, "ingress")
    icmp = rule_body({"rule": "icmp", "cidr": "0.0.0.0/0"}, "g")
    assert icmp["protocol"] == "icmp" and icmp["port_range_min"] is None and icmp["remote_ip_prefix"] == "0.0.0.0/0"
    custom = rule_body({"rule": "custom_tcp", "from_port": "8000", "to_port": "8080", "remote": "group",
                        "remote_group": "g2"}, "g")
    assert (custom["port_range_min"], custom["port_range_max"], custom["remote_group_id"]) == (8000, 8080, "g2")
    for bad in ({"rule": "nope"}, {"rule": "custom_tcp"}, {"rule": "custom_udp", "port": "70000"},
                {"rule": "ssh", "direction": "sideways"}):
        with pytest.raises(FormError):
            rule_body(bad, "g")


def test_topology_joins_devices_to_their_networks() -> None:
    nets: list[dict[str, Any]] = [{"id": "n1", "name": "private"}, {"id": "ext", "name": "public", "router:external": True}]
    ports = [{"network_id": "n1", "device_id": "r1", "fixed_ips": [{"ip_address": "10.0.0.1"}], "status": "ACTIVE"},
             {"network_id": "ext", "device_id": "r1", "fixed_ips": [{"ip_address": "172.24.4.2"}], "status": "DOWN"},
             {"network_id": "n1", "device_id": "s1", "fixed_ips": [{"ip_address": "10.0.0.5"}], "status": "ACTIVE"}]
    d = layout(nets, [{"network_id": "n1", "cidr": "10.0.0.0/24"}], ports, [{"id": "r1", "name": "r"}],
               [{"id": "s1", "name": "vm", "status": "ACTIVE"}])
    assert [n["name"] for n in d.networks] == ["public", "private"]  # external first
    x = {n["id"]: n["x"] for n in d.networks}
    router, server = d.devices
    assert router["kind"] == "router" and {ip for _, ip, _ in router["links"]} == {"10.0.0.1", "172.24.4.2"}
    assert server["links"] == [(x["n1"], "10.0.0.5", "ACTIVE")] and server["y"] > router["y"]
    assert d.width > server["x"]
    # A gateway port the project cannot see is drawn from the router's external_gateway_info.
    gateway = {"network_id": "ext", "external_fixed_ips": [{"ip_address": "172.24.4.9"}]}
    d = layout(nets, [], ports[2:], [{"id": "r1", "name": "r", "status": "ACTIVE", "external_gateway_info": gateway}], [])
    assert d.devices[0]["links"] == [(x["ext"], "172.24.4.9", "ACTIVE")]


@pytest.mark.parametrize(("target", "ok"), [("/project/", True), ("/", True), ("//evil.example/", False),
                                            ("/\\evil.example/", False), ("https://evil.example/", False),
                                            ("", False), ("/x\r\nSet-Cookie: a=b", False)])
def test_redirects_after_a_form_stay_on_the_site(target: str, ok: bool) -> None:
    assert local_path(target) is ok


def test_the_console_page_may_be_framed_by_the_dashboard_and_allowed_hosts_only() -> None:
    from tinystack.config import load
    from tinystack.console.service import ConsoleService

    cfg = load(environ={})
    urls = {"console": "http://10.0.0.5:6080"}
    svc = ConsoleService(cfg, None, None, {}, urls)  # type: ignore[arg-type]  # neither is used here
    assert svc.frame_ancestors() == "'self'" and svc.allowed_origins == frozenset()
    urls["dashboard"] = "http://Dash.Example.org:8000"
    cfg.set("console", "allowed_origins", "other.example.org")
    svc = ConsoleService(cfg, None, None, {}, urls)  # type: ignore[arg-type]
    assert svc.frame_ancestors() == "'self' http://Dash.Example.org:8000 other.example.org:*"
    assert svc.allowed_origins == frozenset({"dash.example.org", "other.example.org"})


def test_the_wizard_sends_chosen_ports_after_networks_and_metadata() -> None:
    body = server_body(_fields(), ["n1"], [], ["p1", "p2", "p1"], {"role": "web"})
    assert body["networks"] == [{"uuid": "n1"}, {"port": "p1"}, {"port": "p2"}]
    assert body["metadata"] == {"role": "web"}
    only_ports = server_body(_fields(), [], [], ["p1"])
    assert only_ports["networks"] == [{"port": "p1"}] and "metadata" not in only_ports


def test_the_metadata_step() -> None:
    assert metadata(["a", "", " b "], ["1", "", " 2 "]) == {"a": "1", "b": "2"}
    assert metadata(["a"], []) == {"a": ""}
    for keys, values in ((["", "a"], ["x", "y"]), (["a", "a"], ["1", "2"]), (["k" * 256], ["v"]), (["k"], ["v" * 256])):
        with pytest.raises(FormError):
            metadata(keys, values)


def test_the_network_ports_step_offers_only_unbound_ports() -> None:
    ports = [{"id": "b", "name": "", "device_id": "", "device_owner": ""},
             {"id": "a", "name": "z", "device_id": "", "device_owner": ""},
             {"id": "c", "device_id": "vm", "device_owner": "compute:nova"},
             {"id": "d", "device_id": "", "device_owner": "network:dhcp"}]
    assert [p["id"] for p in free_ports(ports)] == ["b", "a"]


def test_attach_interface_and_rescue_bodies() -> None:
    assert interface_body({"specification": "network", "network": "n", "fixed_ip": " 10.0.0.5 "}) == {
        "net_id": "n", "fixed_ips": [{"ip_address": "10.0.0.5"}]}
    assert interface_body({"network": "n"}) == {"net_id": "n"}
    assert interface_body({"specification": "port", "port": "p", "network": "n"}) == {"port_id": "p"}
    for bad in ({"specification": "port"}, {"specification": "network"}, {"specification": "floppy", "port": "p"}):
        with pytest.raises(FormError):
            interface_body(bad)
    assert rescue_body({}) == {}
    assert rescue_body({"image": " i ", "password": "pw"}) == {"rescue_image_ref": "i", "adminPass": "pw"}


def test_flavor_access_names_a_known_project() -> None:
    projects = [{"id": "p1", "name": "one"}]
    assert known_project(projects, " p1 ") == "p1"
    for bad in ("", "p2"):
        with pytest.raises(FormError):
            known_project(projects, bad)
