"""Trunks (``trunk``, ``trunk-details``) through openstacksdk, the ``openstack network trunk`` commands and raw
HTTP: the lifecycle, the status that follows the parent's binding, Neutron's validation and isolation; and the
remaining fields of issue 18: networks' address scopes and floating IPs' DNS name and domain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openstack
import pytest
import requests

from tests.livecloud import LiveCloud
from tests.network.conftest import Neutron, neutron_error, unique
from tests.waiting import wait_for

pytestmark = pytest.mark.api


class Nets:
    """Two networks of one project (the parent's and a subport's), with a port factory; removed afterwards."""

    def __init__(self, conn: openstack.connection.Connection, cidr_base: int) -> None:
        self.conn = conn
        self.ports: list[str] = []
        self.trunks: list[str] = []
        self.parent_net = conn.network.create_network(name=unique("trunk-parent"))
        conn.network.create_subnet(network_id=self.parent_net.id, ip_version=4, cidr=f"10.{cidr_base}.1.0/24")
        self.sub_net = conn.network.create_network(name=unique("trunk-sub"))
        conn.network.create_subnet(network_id=self.sub_net.id, ip_version=4, cidr=f"10.{cidr_base}.2.0/24")

    def port(self, on_sub: bool = False, **attrs: Any) -> Any:
        net = self.sub_net if on_sub else self.parent_net
        port = self.conn.network.create_port(network_id=net.id, name=unique("tp"), **attrs)
        self.ports.append(port.id)
        return port

    def cleanup(self, admin: openstack.connection.Connection) -> None:
        for trunk_id in self.trunks:
            trunk = admin.network.get_trunk(trunk_id) if admin.network.find_trunk(trunk_id) else None
            if trunk is not None:
                admin.network.update_port(trunk.port_id, binding_host_id="")
                if not trunk.is_admin_state_up:
                    admin.network.update_trunk(trunk, admin_state_up=True)
                admin.network.delete_trunk(trunk)
        for port_id in self.ports:
            admin.network.delete_port(port_id, ignore_missing=True)
        for net in (self.parent_net, self.sub_net):
            admin.network.delete_network(net, ignore_missing=True)


@pytest.fixture
def nets(live: LiveCloud) -> Iterator[Nets]:
    made = Nets(live.conn("demo"), 140)
    yield made
    made.cleanup(live.conn("admin"))


def _aliases(live: LiveCloud) -> set[str]:
    token = live.conn("demo").auth_token
    body = requests.get(f"{live.url('network')}/v2.0/extensions", headers={"X-Auth-Token": token}, timeout=10).json()
    return {e["alias"] for e in body["extensions"]}


def test_trunk_lifecycle_cli_and_sdk(live: LiveCloud, nets: Nets, demo_api: Neutron) -> None:
    assert {"trunk", "trunk-details"} <= _aliases(live)
    parent = nets.port()
    sub1 = nets.port(on_sub=True, mac_address=parent.mac_address)
    name = unique("trunk")
    made = live.cli_json("network", "trunk", "create", "--parent-port", parent.id, "--subport",
                         f"port={sub1.id},segmentation-type=vlan,segmentation-id=100", "--description", "two nets",
                         name, cloud="demo")
    nets.trunks.append(made["id"])
    conn = nets.conn
    trunk = conn.network.get_trunk(made["id"])
    assert trunk.port_id == parent.id and trunk.status == "DOWN" and trunk.is_admin_state_up
    assert trunk.description == "two nets" and trunk.project_id == conn.current_project_id
    assert trunk.sub_ports == [{"port_id": sub1.id, "segmentation_type": "vlan", "segmentation_id": 100}]
    # trunk-details on the parent only; the subport is owned by the trunk.
    details = conn.network.get_port(parent.id).trunk_details
    assert details == {"trunk_id": trunk.id, "sub_ports": [{"port_id": sub1.id, "segmentation_type": "vlan",
                                                            "segmentation_id": 100, "mac_address": parent.mac_address}]}
    shown_sub = conn.network.get_port(sub1.id)
    assert shown_sub.trunk_details is None
    assert (shown_sub.device_owner, shown_sub.device_id) == ("trunk:subport", trunk.id)
    assert name in [t["Name"] for t in live.cli_json("network", "trunk", "list", cloud="demo")]

    # The subport actions through openstacksdk.
    sub2 = nets.port(on_sub=True)
    conn.network.add_trunk_subports(trunk, [{"port_id": sub2.id, "segmentation_type": "vlan",
                                             "segmentation_id": "200"}])
    listed = conn.network.get_trunk_subports(trunk)["sub_ports"]
    assert [(s["port_id"], s["segmentation_id"]) for s in listed] == [(sub1.id, 100), (sub2.id, 200)]
    conn.network.delete_trunk_subports(trunk, [{"port_id": sub1.id}])
    assert [s["port_id"] for s in conn.network.get_trunk(trunk.id).sub_ports] == [sub2.id]
    freed = conn.network.get_port(sub1.id)
    assert (freed.device_owner, freed.device_id) == ("", "")
    # ... and the CLI's.
    live.cli("network", "trunk", "set", "--subport", f"port={sub1.id},segmentation-type=vlan,segmentation-id=101",
             "--name", name + "-x", trunk.id, cloud="demo")
    shown = live.cli_json("network", "trunk", "show", trunk.id, cloud="demo")
    assert shown["name"] == name + "-x"
    assert live.cli_json("network", "subport", "list", "--trunk", trunk.id, cloud="demo") == [
        {"Port": sub1.id, "Segmentation Type": "vlan", "Segmentation ID": 101},
        {"Port": sub2.id, "Segmentation Type": "vlan", "Segmentation ID": 200}]
    live.cli("network", "trunk", "unset", "--subport", sub2.id, trunk.id, cloud="demo")

    # Tags, as on every standard resource; revision numbers move.
    before = conn.network.get_trunk(trunk.id).revision_number
    assert demo_api("PUT", f"/v2.0/trunks/{trunk.id}/tags/blue").status_code == 201
    assert demo_api("GET", "/v2.0/trunks?tags=blue").json()["trunks"][0]["id"] == trunk.id
    assert conn.network.get_trunk(trunk.id).revision_number > before

    # Disabled: subports cannot change and it cannot be deleted (TrunkDisabled).
    live.cli("network", "trunk", "set", "--disable", trunk.id, cloud="demo")
    neutron_error(demo_api("PUT", f"/v2.0/trunks/{trunk.id}/add_subports", {"sub_ports": [
        {"port_id": sub2.id, "segmentation_type": "vlan", "segmentation_id": 300}]}), 409, "TrunkDisabled")
    neutron_error(demo_api("DELETE", f"/v2.0/trunks/{trunk.id}"), 409, "TrunkDisabled")
    live.cli("network", "trunk", "set", "--enable", trunk.id, cloud="demo")

    live.cli("network", "trunk", "delete", trunk.id, cloud="demo")
    nets.trunks.remove(trunk.id)
    neutron_error(demo_api("GET", f"/v2.0/trunks/{trunk.id}"), 404, "TrunkNotFound")
    assert conn.network.get_port(sub1.id).device_owner == ""
    assert conn.network.get_port(parent.id).trunk_details is None


def test_trunk_status_follows_the_parent_binding(live: LiveCloud, nets: Nets, demo_api: Neutron) -> None:
    parent = nets.port()
    sub = nets.port(on_sub=True, mac_address=parent.mac_address)
    conn, admin = nets.conn, live.conn("admin")
    trunk = conn.network.create_trunk(name=unique("trunk"), port_id=parent.id, sub_ports=[
        {"port_id": sub.id, "segmentation_type": "vlan", "segmentation_id": 10}])
    nets.trunks.append(trunk.id)
    assert trunk.status == "DOWN"
    # What Nova does when a server boots on the parent: the subports follow its binding and are wired.
    admin.network.update_port(parent.id, binding_host_id=live.host, device_owner="compute:nova",
                              device_id=unique("server"))
    assert admin.network.get_port(sub.id).binding_host_id == live.host
    wait_for(lambda: conn.network.get_trunk(trunk.id).status == "ACTIVE", 30, "the trunk ACTIVE")
    assert conn.network.get_port(sub.id).status == "ACTIVE"
    # A subport added to the running trunk is wired on the parent's host too.
    sub2 = nets.port(on_sub=True)
    conn.network.add_trunk_subports(trunk, [{"port_id": sub2.id, "segmentation_type": "vlan",
                                             "segmentation_id": 11}])
    assert admin.network.get_port(sub2.id).binding_host_id == live.host
    wait_for(lambda: conn.network.get_port(sub2.id).status == "ACTIVE", 30, "the added subport ACTIVE")
    wait_for(lambda: conn.network.get_trunk(trunk.id).status == "ACTIVE", 30, "the trunk ACTIVE again")
    # In use: neither the trunk nor its ports can go.
    neutron_error(demo_api("DELETE", f"/v2.0/trunks/{trunk.id}"), 409, "TrunkInUse")
    neutron_error(demo_api("DELETE", f"/v2.0/ports/{parent.id}"), 409, "PortInUseAsTrunkParent")
    neutron_error(demo_api("DELETE", f"/v2.0/ports/{sub.id}"), 409, "PortInUseAsSubPort")
    # The guest goes: the subports are unbound with the parent, and the trunk is DOWN and deletable.
    admin.network.update_port(parent.id, binding_host_id="", device_id="", device_owner="")
    assert admin.network.get_port(sub.id).binding_host_id == ""
    assert conn.network.get_trunk(trunk.id).status == "DOWN"
    conn.network.delete_trunk(trunk)
    nets.trunks.remove(trunk.id)
    conn.network.delete_port(sub.id)


def test_a_server_on_the_parent_brings_the_trunk_up(live: LiveCloud, nets: Nets, demo_api: Neutron) -> None:
    conn, admin = nets.conn, live.conn("admin")
    image = conn.image.create_image(name=unique("trunk-img"), data=b"\0" * 4096, disk_format="raw",
                                    container_format="bare")
    parent = nets.port()
    sub = nets.port(on_sub=True, mac_address=parent.mac_address)
    trunk = live.cli_json("network", "trunk", "create", "--parent-port", parent.id, "--subport",
                          f"port={sub.id},segmentation-type=vlan,segmentation-id=42", unique("trunk"), cloud="demo")
    nets.trunks.append(trunk["id"])
    server = live.cli_json("server", "create", "--flavor", "42", "--image", image.id, "--nic", f"port-id={parent.id}",
                           "--wait", unique("trunk-vm"), cloud="demo")
    try:
        wait_for(lambda: conn.network.get_trunk(trunk["id"]).status == "ACTIVE", 30, "the trunk ACTIVE")
        assert admin.network.get_port(sub.id).binding_host_id == admin.network.get_port(parent.id).binding_host_id
        assert conn.network.get_port(sub.id).status == "ACTIVE"
        neutron_error(demo_api("DELETE", f"/v2.0/trunks/{trunk['id']}"), 409, "TrunkInUse")
    finally:
        conn.compute.delete_server(server["id"])
        wait_for(lambda: conn.compute.find_server(server["id"]) is None, 30, "the server gone")
    wait_for(lambda: conn.network.get_trunk(trunk["id"]).status == "DOWN", 30, "the trunk DOWN")
    assert admin.network.get_port(sub.id).binding_host_id == ""
    conn.image.delete_image(image)


def test_trunk_validation_as_neutron(live: LiveCloud, nets: Nets, demo_api: Neutron, alt_api: Neutron) -> None:
    parent, sub, other = nets.port(), nets.port(on_sub=True), nets.port(on_sub=True)

    def create(port_id: str, sub_ports: list[dict[str, Any]]) -> requests.Response:
        return demo_api("POST", "/v2.0/trunks", {"trunk": {"port_id": port_id, "sub_ports": sub_ports}})

    def vlan(port_id: str, seg: Any) -> dict[str, Any]:
        return {"port_id": port_id, "segmentation_type": "vlan", "segmentation_id": seg}

    for bad_id in (0, 4095, -1, "abc", True):
        neutron_error(create(parent.id, [vlan(sub.id, bad_id)]), 400, "InvalidInput")
    neutron_error(create(parent.id, [{"port_id": sub.id, "segmentation_type": "vxlan", "segmentation_id": 5}]),
                  400, "InvalidInput")
    neutron_error(create(parent.id, [{"port_id": sub.id}]), 400, "InvalidInput")
    neutron_error(create(parent.id, [vlan(sub.id, 5), vlan(sub.id, 6)]), 400, "InvalidInput")
    neutron_error(create(parent.id, [vlan(sub.id, 5), vlan(other.id, 5)]), 400, "InvalidInput")
    neutron_error(create(parent.id, [vlan(parent.id, 5)]), 409, "ParentPortInUse")
    neutron_error(create(parent.id, "nope"), 400, "InvalidInput")  # type: ignore[arg-type]
    # A failed create leaves nothing: the parent is still free.
    assert nets.conn.network.get_port(parent.id).trunk_details is None
    assert nets.conn.network.get_port(sub.id).device_owner == ""

    ok = create(parent.id, [vlan(sub.id, 5)])
    assert ok.status_code == 201, ok.text
    trunk_id = ok.json()["trunk"]["id"]
    nets.trunks.append(trunk_id)
    neutron_error(create(parent.id, []), 409, "ParentPortInUse")  # already a parent
    neutron_error(create(sub.id, []), 409, "TrunkPortInUse")  # already a subport
    second = nets.port()
    neutron_error(create(second.id, [vlan(sub.id, 7)]), 409, "TrunkPortInUse")
    add = f"/v2.0/trunks/{trunk_id}/add_subports"
    neutron_error(demo_api("PUT", add, {"sub_ports": [vlan(other.id, 5)]}), 409, "DuplicateSubPort")
    neutron_error(demo_api("PUT", add, {"sub_ports": [vlan(other.id, 4096)]}), 400, "InvalidInput")
    neutron_error(demo_api("PUT", add, {"sub_ports": [vlan(parent.id, 8)]}), 409, "ParentPortInUse")
    neutron_error(demo_api("PUT", add, {}), 400, "InvalidInput")
    used = nets.port(on_sub=True, device_id=unique("dev"))
    neutron_error(demo_api("PUT", add, {"sub_ports": [vlan(used.id, 9)]}), 409, "PortInUse")
    neutron_error(demo_api("PUT", f"/v2.0/trunks/{trunk_id}/remove_subports", {"sub_ports": [{"port_id": other.id}]}),
                  404, "SubPortNotFound")
    neutron_error(demo_api("PUT", f"/v2.0/trunks/{trunk_id}", {"trunk": {"port_id": second.id}}), 400)
    neutron_error(demo_api("PUT", f"/v2.0/trunks/{trunk_id}", {"trunk": {"admin_state_up": "maybe"}}), 400)
    assert [s["segmentation_id"] for s in demo_api("GET", f"/v2.0/trunks/{trunk_id}").json()["trunk"]["sub_ports"]] \
        == [5]

    # Another project: the trunk is not there for it, and its ports are not ours to trunk.
    for method, path, body in (("GET", f"/v2.0/trunks/{trunk_id}", None),
                               ("PUT", f"/v2.0/trunks/{trunk_id}", {"trunk": {"name": "x"}}),
                               ("DELETE", f"/v2.0/trunks/{trunk_id}", None),
                               ("GET", f"/v2.0/trunks/{trunk_id}/get_subports", None),
                               ("PUT", add, {"sub_ports": [vlan(other.id, 9)]}),
                               ("PUT", f"/v2.0/trunks/{trunk_id}/remove_subports", {"sub_ports": [{"port_id": sub.id}]}),
                               ("PUT", f"/v2.0/trunks/{trunk_id}/tags/x", None)):
        neutron_error(alt_api(method, path, body), 404, "TrunkNotFound")
    assert trunk_id not in [t["id"] for t in alt_api("GET", "/v2.0/trunks").json()["trunks"]]
    alt = live.conn("alt_demo")
    alt_net = alt.network.create_network(name=unique("alt-trunk"))
    try:
        alt.network.create_subnet(network_id=alt_net.id, ip_version=4, cidr="10.141.1.0/24")
        alt_port = alt.network.create_port(network_id=alt_net.id)
        neutron_error(create(alt_port.id, []), 404, "PortNotFound")
        neutron_error(demo_api("PUT", add, {"sub_ports": [vlan(alt_port.id, 9)]}), 404, "PortNotFound")
        # Nor may alt trunk demo's ports.
        neutron_error(alt_api("POST", "/v2.0/trunks", {"trunk": {"port_id": other.id}}), 404, "PortNotFound")
        neutron_error(alt_api("POST", "/v2.0/trunks", {"trunk": {"port_id": alt_port.id, "sub_ports": [
            vlan(other.id, 3)]}}), 404, "PortNotFound")
        assert alt.network.get_port(alt_port.id).trunk_details is None  # nothing half-made
        # A member may not make a trunk in another project.
        neutron_error(alt_api("POST", "/v2.0/trunks", {"trunk": {"port_id": alt_port.id,
                                                                 "project_id": demo_api.project_id}}), 403)
        alt.network.delete_port(alt_port.id)
    finally:
        alt.network.delete_network(alt_net, ignore_missing=True)
    # An admin sees and manages it.
    admin = live.conn("admin")
    assert admin.network.get_trunk(trunk_id).project_id == nets.conn.current_project_id
    # A subport's network may not carry bigger frames than the parent's.
    nets.conn.network.update_network(nets.parent_net, mtu=1400)
    neutron_error(demo_api("PUT", add, {"sub_ports": [vlan(other.id, 9)]}), 409, "SubPortMtuGreaterThanTrunkPortMtu")


def test_network_address_scopes_from_subnet_pools(live: LiveCloud) -> None:
    conn = live.conn("demo")
    scope = conn.network.create_address_scope(name=unique("scope"), ip_version=4)
    pool = conn.network.create_subnet_pool(name=unique("pool"), prefixes=["10.142.0.0/16"],
                                           address_scope_id=scope.id, default_prefixlen=24)
    net = conn.network.create_network(name=unique("scoped"))
    try:
        assert conn.network.get_network(net.id).ipv4_address_scope_id is None
        conn.network.create_subnet(network_id=net.id, ip_version=4, subnetpool_id=pool.id)
        shown = live.cli_json("network", "show", net.id, cloud="demo")
        assert shown["ipv4_address_scope"] == scope.id and shown["ipv6_address_scope"] is None
        assert [n.id for n in conn.network.networks(ipv4_address_scope=scope.id)] == [net.id]
        # A subnet of the same version from outside the scope: the network is no longer in one.
        conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.143.0.0/24")
        assert conn.network.get_network(net.id).ipv4_address_scope_id is None
    finally:
        conn.network.delete_network(net)
        conn.network.delete_subnet_pool(pool)
        conn.network.delete_address_scope(scope)


def test_floating_ip_dns_name_and_domain(live: LiveCloud, demo_api: Neutron) -> None:
    conn = live.conn("demo")
    public = conn.network.find_network("public", ignore_missing=False)
    name = unique("www")
    fip = live.cli_json("floating", "ip", "create", "--dns-name", name, "--dns-domain", "example.org.", public.id,
                        cloud="demo")
    try:
        shown = conn.network.get_ip(fip["id"])
        assert (shown.dns_name, shown.dns_domain) == (name, "example.org.")
        assert demo_api("GET", f"/v2.0/floatingips?dns_name={name}").json()["floatingips"][0]["id"] == fip["id"]
        neutron_error(demo_api("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"dns_name": "other"}}), 400)
    finally:
        conn.network.delete_ip(fip["id"])
    plain = conn.network.create_ip(floating_network_id=public.id)
    try:
        assert (plain.dns_name, plain.dns_domain) == ("", "")
    finally:
        conn.network.delete_ip(plain)
    for body in ({"dns_name": "web"}, {"dns_domain": "example.org."}, {"dns_name": "bad_label!", "dns_domain": "x.org."},
                 {"dns_name": "web", "dns_domain": "not a domain"}):
        neutron_error(demo_api("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": public.id,
                                                                            **body}}), 400)
    assert not [f for f in conn.network.ips(project_id=conn.current_project_id) if f.dns_domain == "x.org."]
