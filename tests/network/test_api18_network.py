"""Issue 18's networking endpoints through unmodified clients: service providers, segments, address scopes,
extra DHCP options and DNS assignment, with their negative cases."""

from __future__ import annotations

import pytest
import requests

from tests.livecloud import LiveCloud
from tests.network.conftest import Neutron, neutron_error, unique

pytestmark = pytest.mark.api


def _aliases(live: LiveCloud) -> set[str]:
    token = live.conn("demo").auth_token
    body = requests.get(f"{live.url('network')}/v2.0/extensions", headers={"X-Auth-Token": token}, timeout=10).json()
    return {e["alias"] for e in body["extensions"]}


def test_service_providers_listed_read_only(live: LiveCloud, demo_api: Neutron) -> None:
    rows = live.cli_json("network", "service", "provider", "list", cloud="demo")
    assert {"Service Type": "L3_ROUTER_NAT", "Name": "default", "Default": True} in rows
    assert [p.service_type for p in live.conn("demo").network.service_providers()] == ["L3_ROUTER_NAT"]
    assert "service-type" in _aliases(live)
    assert demo_api("POST", "/v2.0/service-providers", {"service_provider": {}}).status_code == 405


def test_segments_follow_network_visibility(live: LiveCloud, admin_api: Neutron, alt_api: Neutron) -> None:
    name = unique("segnet")
    net = live.cli_json("network", "create", name, cloud="demo")
    try:
        admin_rows = live.cli_json("network", "segment", "list", "--network", net["id"], cloud="admin")
        assert len(admin_rows) == 1 and admin_rows[0]["Network"] == net["id"]
        seg_id = admin_rows[0]["ID"]
        shown = live.cli_json("network", "segment", "show", seg_id, cloud="admin")
        assert shown["network_type"] in ("local", "flat", "vlan", "vxlan")
        mine = [s for s in live.conn("demo").network.segments(network_id=net["id"])]
        assert [s.id for s in mine] == [seg_id] and mine[0].segmentation_id is None
        # Another project does not see the network, so not its segment either.
        neutron_error(alt_api("GET", f"/v2.0/segments/{seg_id}"), 404, "SegmentNotFound")
        assert alt_api("GET", f"/v2.0/segments?network_id={net['id']}").json()["segments"] == []
        assert admin_api("DELETE", f"/v2.0/segments/{seg_id}").status_code == 405
        assert "segment" in _aliases(live)
    finally:
        live.cli("network", "delete", net["id"], cloud="demo")


def test_address_scope_lifecycle_and_pools(live: LiveCloud, demo_api: Neutron, alt_api: Neutron) -> None:
    name = unique("scope")
    scope = live.cli_json("address", "scope", "create", "--ip-version", "4", name, cloud="demo")
    assert scope["ip_version"] == 4 and scope["shared"] is False
    try:
        assert name in [r["Name"] for r in live.cli_json("address", "scope", "list", cloud="demo")]
        conn = live.conn("demo")
        # A pool of another IP version may not join the scope; one of the same version may.
        neutron_error(demo_api("POST", "/v2.0/subnetpools", {"subnetpool": {
            "name": unique("p6"), "prefixes": ["fd00:1::/48"], "address_scope_id": scope["id"]}}), 400,
            "IllegalSubnetPoolIpVersionAssociationToAddressScope")
        pool = conn.network.create_subnet_pool(name=unique("p4"), prefixes=["10.131.0.0/16"],
                                               address_scope_id=scope["id"])
        try:
            assert pool.address_scope_id == scope["id"]
            busy = live.cli("address", "scope", "delete", scope["id"], cloud="demo", check=False)
            assert busy.returncode != 0
            neutron_error(demo_api("DELETE", f"/v2.0/address-scopes/{scope['id']}"), 409, "AddressScopeInUse")
        finally:
            conn.network.delete_subnet_pool(pool)
        # Another project neither sees nor uses it.
        neutron_error(alt_api("GET", f"/v2.0/address-scopes/{scope['id']}"), 404, "AddressScopeNotFound")
        neutron_error(alt_api("DELETE", f"/v2.0/address-scopes/{scope['id']}"), 404, "AddressScopeNotFound")
        neutron_error(alt_api("POST", "/v2.0/subnetpools", {"subnetpool": {
            "name": unique("px"), "prefixes": ["10.132.0.0/16"], "address_scope_id": scope["id"]}}), 404,
            "AddressScopeNotFound")
        live.cli("address", "scope", "set", "--name", name + "-x", scope["id"], cloud="demo")
        assert live.cli_json("address", "scope", "show", scope["id"], cloud="demo")["name"] == name + "-x"
    finally:
        live.cli("address", "scope", "delete", scope["id"], cloud="demo", check=False)
    neutron_error(demo_api("GET", f"/v2.0/address-scopes/{scope['id']}"), 404, "AddressScopeNotFound")


def test_address_scope_bad_input_and_policy(live: LiveCloud, demo_api: Neutron, admin_api: Neutron) -> None:
    shared = live.cli("address", "scope", "create", "--share", unique("s"), cloud="demo", check=False)
    assert shared.returncode != 0 and "403" in shared.stderr + shared.stdout
    neutron_error(demo_api("POST", "/v2.0/address-scopes", {"address_scope": {"name": "x", "shared": True,
                                                                             "ip_version": 4}}),
                  403, "PolicyNotAuthorized")
    neutron_error(demo_api("POST", "/v2.0/address-scopes", {"address_scope": {"name": "x", "ip_version": 5}}), 400)
    neutron_error(demo_api("POST", "/v2.0/address-scopes", {"address_scope": {"name": "x"}}), 400)
    neutron_error(demo_api("POST", "/v2.0/address-scopes", {"address_scope": {"ip_version": 4, "bogus": 1}}), 400)
    assert "address-scope" in _aliases(live)
    # A shared scope (an admin's) is seen and used by every project.
    r = admin_api("POST", "/v2.0/address-scopes", {"address_scope": {"name": unique("shared"), "ip_version": 6,
                                                                     "shared": True}})
    assert r.status_code == 201, r.text
    sid = r.json()["address_scope"]["id"]
    try:
        assert demo_api("GET", f"/v2.0/address-scopes/{sid}").json()["address_scope"]["shared"] is True
        neutron_error(demo_api("PUT", f"/v2.0/address-scopes/{sid}", {"address_scope": {"name": "mine"}}), 403)
    finally:
        assert admin_api("DELETE", f"/v2.0/address-scopes/{sid}").status_code == 204


def test_extra_dhcp_options_on_ports(live: LiveCloud, demo_api: Neutron) -> None:
    name = unique("optnet")
    live.cli("network", "create", name, cloud="demo")
    try:
        live.cli("subnet", "create", "--network", name, "--subnet-range", "10.141.0.0/24", name, cloud="demo")
        port = live.cli_json("port", "create", "--network", name, "--extra-dhcp-option",
                             "name=bootfile-name,value=pxelinux.0", "--extra-dhcp-option",
                             "name=ntp-server,value=[fd00::1],ip-version=6", unique("p"), cloud="demo")
        opts = live.cli_json("port", "show", port["id"], cloud="demo")["extra_dhcp_opts"]
        assert {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4} in opts
        assert {"opt_name": "ntp-server", "opt_value": "[fd00::1]", "ip_version": 6} in opts
        # Neutron's update rule: merge by name and version, a null value removes.
        r = demo_api("PUT", f"/v2.0/ports/{port['id']}", {"port": {"extra_dhcp_opts": [
            {"opt_name": "bootfile-name", "opt_value": None}, {"opt_name": "tftp-server", "opt_value": "10.141.0.9"}]}})
        assert r.status_code == 200, r.text
        names = {o["opt_name"] for o in r.json()["port"]["extra_dhcp_opts"]}
        assert names == {"ntp-server", "tftp-server"}
        for bad_opts in ([{"opt_name": "no-such-option", "opt_value": "1"}],
                         [{"opt_name": "bootfile-name", "opt_value": "a\nb"}], "bootfile-name"):
            neutron_error(demo_api("PUT", f"/v2.0/ports/{port['id']}", {"port": {"extra_dhcp_opts": bad_opts}}), 400)
        shown = demo_api("GET", f"/v2.0/ports/{port['id']}").json()["port"]
        assert {o["opt_name"] for o in shown["extra_dhcp_opts"]} == {"ntp-server", "tftp-server"}
        assert "extra_dhcp_opt" in _aliases(live)
    finally:
        for p in live.conn("demo").network.ports(network_id=live.conn("demo").network.find_network(name).id):
            if not p.device_owner:
                live.conn("demo").network.delete_port(p)
        live.cli("network", "delete", name, cloud="demo")


def test_port_dns_name_and_assignment(live: LiveCloud, demo_api: Neutron) -> None:
    name = unique("dnsnet")
    net = live.cli_json("network", "create", name, cloud="demo")
    zoned = demo_api("POST", "/v2.0/networks", {"network": {"name": unique("zone"), "dns_domain": "example.org"}})
    assert zoned.status_code == 201, zoned.text
    zone_net = zoned.json()["network"]
    try:
        assert zone_net["dns_domain"] == "example.org."
        live.cli("subnet", "create", "--network", name, "--subnet-range", "10.142.0.0/24", name, cloud="demo")
        demo_api("POST", "/v2.0/subnets", {"subnet": {"network_id": zone_net["id"], "cidr": "10.143.0.0/24",
                                                      "ip_version": 4}})
        port = live.cli_json("port", "create", "--network", name, "--dns-name", "web1", unique("p"), cloud="demo")
        shown = live.cli_json("port", "show", port["id"], cloud="demo")
        ip = shown["fixed_ips"][0]["ip_address"]
        assert shown["dns_name"] == "web1"
        assert shown["dns_assignment"] == [{"hostname": "web1", "ip_address": ip, "fqdn": "web1.openstacklocal."}]
        anon = demo_api("POST", "/v2.0/ports", {"port": {"network_id": zone_net["id"]}}).json()["port"]
        aip = anon["fixed_ips"][0]["ip_address"]
        host = "host-" + aip.replace(".", "-")
        assert anon["dns_assignment"] == [{"hostname": host, "ip_address": aip, "fqdn": f"{host}.example.org."}]
        for bad_name in ("web_1", "-web", "a,b", "x" * 64):
            neutron_error(demo_api("PUT", f"/v2.0/ports/{port['id']}", {"port": {"dns_name": bad_name}}), 400)
        neutron_error(demo_api("PUT", f"/v2.0/networks/{net['id']}", {"network": {"dns_domain": "bad..domain"}}), 400)
        renamed = demo_api("PUT", f"/v2.0/ports/{port['id']}", {"port": {"dns_name": "web2"}}).json()["port"]
        assert renamed["dns_assignment"][0]["fqdn"] == "web2.openstacklocal."
        assert "dns-integration" in _aliases(live)
        demo_api("DELETE", f"/v2.0/ports/{anon['id']}")
        demo_api("DELETE", f"/v2.0/ports/{port['id']}")
    finally:
        live.cli("network", "delete", net["id"], cloud="demo")
        demo_api("DELETE", f"/v2.0/networks/{zone_net['id']}")
