"""Bad input: the status, the NeutronError shape and type, and that nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.livecloud import LiveCloud
from tests.network.conftest import Neutron, neutron_error, unique

pytestmark = pytest.mark.api


@pytest.fixture
def net(demo_api: Neutron) -> Iterator[dict[str, Any]]:
    n = demo_api("POST", "/v2.0/networks", {"network": {"name": unique("neg")}}).json()["network"]
    s = demo_api("POST", "/v2.0/subnets", {"subnet": {"network_id": n["id"], "cidr": "10.50.0.0/24",
                                                      "ip_version": 4, "enable_dhcp": False}}).json()["subnet"]
    n["subnet"] = s
    yield n
    for p in demo_api("GET", f"/v2.0/ports?network_id={n['id']}").json()["ports"]:
        demo_api("DELETE", f"/v2.0/ports/{p['id']}")
    demo_api("DELETE", f"/v2.0/networks/{n['id']}")


def count(api: Neutron, path: str) -> int:
    key = path.split("?")[0].rsplit("/", 1)[-1].replace("-", "_")
    return len(api("GET", path).json()[key])


@pytest.mark.parametrize("cidr", ["10.50.0.0/33", "not-a-cidr", "10.50.0.1/24", "10.50.0.0/25", "10.50.0.128/25"])
def test_invalid_or_overlapping_cidr(demo_api: Neutron, net: dict[str, Any], cidr: str) -> None:
    before = count(demo_api, f"/v2.0/subnets?network_id={net['id']}")
    resp = demo_api("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}})
    neutron_error(resp, 400)
    assert count(demo_api, f"/v2.0/subnets?network_id={net['id']}") == before


def test_ip_outside_subnet(demo_api: Neutron, net: dict[str, Any]) -> None:
    resp = demo_api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": net["subnet"]["id"], "ip_address": "10.99.0.5"}]}})
    neutron_error(resp, 400, "InvalidIpForSubnet")
    resp = demo_api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.99.0.5"}]}})
    neutron_error(resp, 400, "InvalidIpForNetwork")
    assert count(demo_api, f"/v2.0/ports?network_id={net['id']}") == 0


def test_ip_and_mac_in_use(demo_api: Neutron, net: dict[str, Any]) -> None:
    first = demo_api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.50.0.20"}]}}).json()["port"]
    resp = demo_api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.50.0.20"}]}})
    neutron_error(resp, 409, "IpAddressAlreadyAllocated")
    resp = demo_api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "mac_address": first["mac_address"]}})
    neutron_error(resp, 409, "MacAddressInUse")
    assert count(demo_api, f"/v2.0/ports?network_id={net['id']}") == 1


def test_delete_network_in_use(demo_api: Neutron, net: dict[str, Any]) -> None:
    demo_api("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}})
    neutron_error(demo_api("DELETE", f"/v2.0/networks/{net['id']}"), 409, "NetworkInUse")
    assert demo_api("GET", f"/v2.0/networks/{net['id']}").status_code == 200


def test_network_with_only_dhcp_port_is_deleted(demo_api: Neutron, admin_api: Neutron) -> None:
    n = demo_api("POST", "/v2.0/networks", {"network": {"name": unique("dhcp")}}).json()["network"]
    demo_api("POST", "/v2.0/subnets", {"subnet": {"network_id": n["id"], "cidr": "10.51.0.0/24", "ip_version": 4}})
    ports = admin_api("GET", f"/v2.0/ports?network_id={n['id']}").json()["ports"]
    assert [p["device_owner"] for p in ports] == ["network:dhcp"]
    assert demo_api("DELETE", f"/v2.0/networks/{n['id']}").status_code == 204
    assert admin_api("GET", f"/v2.0/ports?network_id={n['id']}").json()["ports"] == []


def test_floating_ip_without_router(demo_api: Neutron, live: LiveCloud, net: dict[str, Any]) -> None:
    public = live.conn("demo").network.find_network("public")
    port = demo_api("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}).json()["port"]
    before = count(demo_api, "/v2.0/floatingips")
    resp = demo_api("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": public.id,
                                                                 "port_id": port["id"]}})
    neutron_error(resp, 404, "ExternalGatewayForFloatingIPNotFound")
    assert count(demo_api, "/v2.0/floatingips") == before


@pytest.mark.parametrize("attrs", [{"provider:network_type": "vlan", "provider:physical_network": "x",
                                    "provider:segmentation_id": 5}, {"shared": True}, {"router:external": True}])
def test_admin_only_network_attributes(demo_api: Neutron, attrs: dict[str, Any]) -> None:
    name = unique("adm")
    resp = demo_api("POST", "/v2.0/networks", {"network": {"name": name, **attrs}})
    neutron_error(resp, 403, "PolicyNotAuthorized")
    assert count(demo_api, f"/v2.0/networks?name={name}") == 0


def test_other_projects_resources_are_404(demo_api: Neutron, alt_api: Neutron, net: dict[str, Any]) -> None:
    neutron_error(alt_api("GET", f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")
    neutron_error(alt_api("DELETE", f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")
    neutron_error(alt_api("GET", f"/v2.0/subnets/{net['subnet']['id']}"), 404, "SubnetNotFound")


def test_security_group_rule_errors(demo_api: Neutron) -> None:
    sg = demo_api("POST", "/v2.0/security-groups", {"security-group": {}})
    neutron_error(sg, 400)
    sg = demo_api("POST", "/v2.0/security-groups", {"security_group": {"name": unique("sg")}}).json()["security_group"]
    try:
        rule = {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 80,
                "port_range_max": 80}
        assert demo_api("POST", "/v2.0/security-group-rules", {"security_group_rule": rule}).status_code == 201
        neutron_error(demo_api("POST", "/v2.0/security-group-rules", {"security_group_rule": rule}), 409,
                      "SecurityGroupRuleExists")
        for bad in ({"protocol": "bogus"}, {"ethertype": "IPv5"}, {"remote_ip_prefix": "300.1.1.1/8"},
                    {"port_range_min": 90, "port_range_max": 80}, {"direction": "sideways"}):
            neutron_error(demo_api("POST", "/v2.0/security-group-rules",
                                   {"security_group_rule": {**rule, **bad}}), 400)
        neutron_error(demo_api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            **rule, "remote_group_id": "8e2b0000-0000-0000-0000-000000000000"}}), 404, "SecurityGroupNotFound")
        neutron_error(demo_api("POST", "/v2.0/security-groups", {"security_group": {"name": "default"}}), 409)
        rules = demo_api("GET", f"/v2.0/security-groups/{sg['id']}").json()["security_group"]["security_group_rules"]
        assert len(rules) == 3
    finally:
        demo_api("DELETE", f"/v2.0/security-groups/{sg['id']}")


def test_unknown_attribute_and_missing_resources(demo_api: Neutron) -> None:
    neutron_error(demo_api("POST", "/v2.0/networks", {"network": {"bogus": 1}}), 400)
    neutron_error(demo_api("GET", "/v2.0/routers/00000000-0000-0000-0000-000000000000"), 404, "RouterNotFound")
    neutron_error(demo_api("PUT", "/v2.0/routers/00000000-0000-0000-0000-000000000000",
                           {"router": {"name": "x"}}), 404, "RouterNotFound")
