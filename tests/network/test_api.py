"""The Neutron API through openstacksdk and the openstack CLI: bootstrap topology, CRUD, routers,
floating IPs, security groups, tags, querying, quotas and discovery."""

from __future__ import annotations

import ipaddress

import pytest

from tests.livecloud import LiveCloud
from tests.network.conftest import Neutron, unique

pytestmark = pytest.mark.api


def test_devstack_topology(live: LiveCloud) -> None:
    admin = live.conn("admin")
    public = admin.network.find_network("public")
    assert public.is_router_external and not public.is_shared
    assert public.provider_network_type == "flat"
    sub = admin.network.find_subnet("public-subnet")
    assert sub.cidr == "172.24.4.0/24" and sub.gateway_ip == "172.24.4.1"
    assert sub.allocation_pools == [{"start": "172.24.4.2", "end": "172.24.4.254"}]
    demo = live.conn("demo")
    private = demo.network.find_network("private")
    assert private.project_id == demo.current_project_id
    router = demo.network.find_router("router1")
    assert router.external_gateway_info["network_id"] == public.id
    assert router.external_gateway_info["enable_snat"] is True
    ifaces = list(demo.network.ports(device_id=router.id, device_owner="network:router_interface"))
    assert [f["ip_address"] for f in ifaces[0].fixed_ips] == ["10.0.0.1"]
    # DHCP port made automatically, as Neutron does
    assert list(admin.network.ports(network_id=private.id, device_owner="network:dhcp"))


def test_network_subnet_port_lifecycle(live: LiveCloud) -> None:
    demo = live.conn("demo")
    net = demo.network.create_network(name=unique("net"))
    try:
        assert net.status == "ACTIVE" and net.mtu == 1450
        assert net.provider_network_type is None  # provider attributes are admin-only
        sub = demo.network.create_subnet(network_id=net.id, cidr="192.168.77.0/24", ip_version=4,
                                         dns_nameservers=["8.8.8.8"],
                                         host_routes=[{"destination": "10.9.0.0/16", "nexthop": "192.168.77.254"}])
        assert sub.gateway_ip == "192.168.77.1"
        assert sub.allocation_pools == [{"start": "192.168.77.2", "end": "192.168.77.254"}]
        port = demo.network.create_port(network_id=net.id, name="p1")
        assert port.status == "DOWN"
        assert port.mac_address.startswith("fa:16:3e:")
        ip = port.fixed_ips[0]["ip_address"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("192.168.77.0/24")
        default = demo.network.find_security_group("default", project_id=demo.current_project_id)
        assert port.security_group_ids == [default.id]
        port = demo.network.update_port(port, name="p2", fixed_ips=[{"subnet_id": sub.id,
                                                                     "ip_address": "192.168.77.50"}])
        assert port.name == "p2" and port.fixed_ips[0]["ip_address"] == "192.168.77.50"
        assert port.revision_number >= 1
        demo.network.delete_port(port)
        # the address is free again
        again = demo.network.create_port(network_id=net.id, fixed_ips=[{"ip_address": "192.168.77.50"}])
        demo.network.delete_port(again)
        demo.network.update_subnet(sub, enable_dhcp=False)
        assert not list(live.conn("admin").network.ports(network_id=net.id))
    finally:
        demo.network.delete_network(net)
    assert demo.network.find_network(net.id) is None


def test_ipv6_slaac_and_stateful(live: LiveCloud) -> None:
    demo = live.conn("demo")
    net = demo.network.create_network(name=unique("v6"))
    try:
        slaac = demo.network.create_subnet(network_id=net.id, cidr="fd00:1::/64", ip_version=6,
                                           ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
        stateful = demo.network.create_subnet(network_id=net.id, cidr="fd00:2::/64", ip_version=6,
                                              ipv6_address_mode="dhcpv6-stateful")
        port = demo.network.create_port(network_id=net.id, mac_address="fa:16:3e:00:11:22")
        ips = {f["subnet_id"]: f["ip_address"] for f in port.fixed_ips}
        assert ips[slaac.id] == "fd00:1::f816:3eff:fe00:1122"  # EUI-64 from the MAC
        assert ipaddress.ip_address(ips[stateful.id]) in ipaddress.ip_network("fd00:2::/64")
        demo.network.delete_port(port)
    finally:
        demo.network.delete_network(net)


def test_router_interfaces_routes_and_floating_ip(live: LiveCloud) -> None:
    demo = live.conn("demo")
    public = demo.network.find_network("public")
    net = demo.network.create_network(name=unique("rnet"))
    router = demo.network.create_router(name=unique("r"), external_gateway_info={"network_id": public.id})
    try:
        sub = demo.network.create_subnet(network_id=net.id, cidr="192.168.101.0/24", ip_version=4)
        info = demo.network.add_interface_to_router(router, subnet_id=sub.id)
        assert info["subnet_id"] == sub.id
        router = demo.network.update_router(router, routes=[{"destination": "10.20.0.0/16",
                                                             "nexthop": "192.168.101.9"}])
        assert router.routes == [{"destination": "10.20.0.0/16", "nexthop": "192.168.101.9"}]
        port = demo.network.create_port(network_id=net.id)
        fip = demo.network.create_ip(floating_network_id=public.id, port_id=port.id)
        assert ipaddress.ip_address(fip.floating_ip_address) in ipaddress.ip_network("172.24.4.0/24")
        assert fip.fixed_ip_address == port.fixed_ips[0]["ip_address"]
        assert fip.router_id == router.id and fip.status == "DOWN"
        fip = demo.network.update_ip(fip, port_id=None)
        assert fip.port_id is None and fip.fixed_ip_address is None
        demo.network.delete_ip(fip)
        demo.network.delete_port(port)
        demo.network.update_router(router, routes=[])
        demo.network.remove_interface_from_router(router, subnet_id=sub.id)
    finally:
        demo.network.delete_router(router)
        demo.network.delete_network(net)


def test_security_groups_and_rules(live: LiveCloud) -> None:
    demo = live.conn("demo")
    sg = demo.network.create_security_group(name=unique("sg"))
    try:
        assert {(r["direction"], r["ethertype"]) for r in sg.security_group_rules} == {("egress", "IPv4"),
                                                                                       ("egress", "IPv6")}
        rule = demo.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                                       protocol="tcp", port_range_min=22, port_range_max=22,
                                                       remote_ip_prefix="10.0.0.0/8")
        assert rule.protocol == "tcp" and rule.remote_ip_prefix == "10.0.0.0/8"
        icmp = demo.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                                       protocol="icmp", remote_group_id=sg.id)
        assert icmp.remote_group_id == sg.id
        demo.network.delete_security_group_rule(icmp)
        default = demo.network.find_security_group("default", project_id=demo.current_project_id)
        ingress = [r for r in default.security_group_rules if r["direction"] == "ingress"]
        assert {r["ethertype"] for r in ingress} == {"IPv4", "IPv6"}
        assert all(r["remote_group_id"] == default.id for r in ingress)
    finally:
        demo.network.delete_security_group(sg)


def test_tags_and_querying(live: LiveCloud, demo_api: Neutron) -> None:
    demo = live.conn("demo")
    names = [unique("q") for _ in range(3)]
    nets = [demo.network.create_network(name=n) for n in names]
    try:
        demo.network.set_tags(nets[0], ["red", "blue"])
        assert sorted(demo.network.get_network(nets[0].id).tags) == ["blue", "red"]
        assert [n.id for n in demo.network.networks(tags="red")] == [nets[0].id]
        assert demo_api("PUT", f"/v2.0/networks/{nets[1].id}/tags/green").status_code == 201
        assert demo_api("GET", f"/v2.0/networks/{nets[1].id}/tags/green").status_code == 204
        assert demo_api("GET", f"/v2.0/networks/{nets[1].id}/tags/nope").status_code == 404
        body = demo_api("GET", f"/v2.0/networks?name={names[2]}&fields=id&fields=name").json()
        assert body["networks"] == [{"id": nets[2].id, "name": names[2]}]
        page = demo_api("GET", "/v2.0/networks?limit=2&sort_key=name&sort_dir=asc").json()
        assert len(page["networks"]) == 2 and page["networks_links"][0]["rel"] == "next"
        all_names = [n["name"] for n in demo_api("GET", "/v2.0/networks?sort_key=name&sort_dir=desc").json()["networks"]]
        assert all_names == sorted(all_names, reverse=True)
        paged = [n.id for n in demo.network.networks(limit=1)]
        assert len(paged) == len(list(demo.network.networks()))  # the SDK follows the links
    finally:
        for n in nets:
            demo.network.delete_network(n)


def test_discovery_quotas_agents(live: LiveCloud, admin_api: Neutron, demo_api: Neutron) -> None:
    import requests

    root = requests.get(live.url("network") + "/", timeout=10).json()
    assert root["versions"][0]["id"] == "v2.0" and root["versions"][0]["status"] == "CURRENT"
    names = {r["name"] for r in admin_api("GET", "/v2.0").json()["resources"]}
    assert {"network", "subnet", "port"} <= names
    aliases = {e["alias"] for e in admin_api("GET", "/v2.0/extensions").json()["extensions"]}
    assert {"router", "security-group", "external-net", "quotas", "binding", "provider"} <= aliases
    quota = demo_api("GET", f"/v2.0/quotas/{demo_api.project_id}").json()["quota"]
    assert quota["network"] == 100 and quota["port"] == 500 and quota["security_group_rule"] == 100
    assert admin_api("PUT", f"/v2.0/quotas/{demo_api.project_id}", {"quota": {"router": 12}}).json()["quota"][
        "router"] == 12
    assert demo_api("PUT", f"/v2.0/quotas/{demo_api.project_id}", {"quota": {"router": 99}}).status_code == 403
    admin_api("DELETE", f"/v2.0/quotas/{demo_api.project_id}")
    details = demo_api("GET", f"/v2.0/quotas/{demo_api.project_id}/details").json()["quota"]
    assert details["router"]["limit"] == 10 and details["router"]["used"] >= 1
    assert admin_api("GET", "/v2.0/agents").status_code == 200
    member = demo_api("GET", "/v2.0/agents")  # filtered by policy, as Neutron lists: none for a member
    assert member.status_code == 200 and member.json()["agents"] == []
    avail = admin_api("GET", "/v2.0/network-ip-availabilities").json()["network_ip_availabilities"]
    public = next(a for a in avail if a["network_name"] == "public")
    assert public["total_ips"] == 253 and public["used_ips"] >= 1
    zones = admin_api("GET", "/v2.0/availability_zones").json()["availability_zones"]
    assert {"name": "nova", "resource": "router", "state": "available"} in zones


def test_cli(live: LiveCloud) -> None:
    name = unique("cli")
    net = live.cli_json("network", "create", name, cloud="demo")
    try:
        live.cli_json("subnet", "create", "--network", name, "--subnet-range", "192.168.88.0/24", "--gateway", "none",
                      name + "-sub", cloud="demo")
        sub = live.cli_json("subnet", "show", name + "-sub", cloud="demo")
        assert sub["gateway_ip"] is None
        assert sub["allocation_pools"] == [{"start": "192.168.88.1", "end": "192.168.88.254"}]
        port = live.cli_json("port", "create", "--network", name, name + "-port", cloud="demo")
        assert port["status"] == "DOWN"
        names = [n["Name"] for n in live.cli_json("network", "list", cloud="demo")]
        assert name in names and "public" in names
        live.cli("port", "delete", port["id"], cloud="demo")
    finally:
        live.cli("network", "delete", net["id"], cloud="demo")
