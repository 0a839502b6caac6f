"""Two projects using the same CIDR each see only their own networks, subnets and ports."""

from __future__ import annotations

from tests.network.conftest import Neutron, unique


def test_same_cidr_two_projects(demo_api: Neutron, alt_api: Neutron) -> None:
    made = []
    try:
        for api in (demo_api, alt_api):
            n = api("POST", "/v2.0/networks", {"network": {"name": unique("iso")}}).json()["network"]
            s = api("POST", "/v2.0/subnets", {"subnet": {"network_id": n["id"], "cidr": "10.0.0.0/24",
                                                         "ip_version": 4}})
            assert s.status_code == 201, s.text
            p = api("POST", "/v2.0/ports", {"port": {"network_id": n["id"], "fixed_ips": [
                {"ip_address": "10.0.0.10"}]}})
            assert p.status_code == 201, p.text  # the same address is free in the other project's subnet
            made.append((api, n, p.json()["port"]))
        (a, na, pa), (b, nb, pb) = made
        for api, mine, other, port, other_port in ((a, na, nb, pa, pb), (b, nb, na, pb, pa)):
            ids = {n["id"] for n in api("GET", "/v2.0/networks").json()["networks"]}
            assert mine["id"] in ids and other["id"] not in ids
            ports = {p["id"] for p in api("GET", "/v2.0/ports").json()["ports"]}
            assert port["id"] in ports and other_port["id"] not in ports
            assert api("GET", f"/v2.0/ports/{other_port['id']}").status_code == 404
            subnets = {s["network_id"] for s in api("GET", "/v2.0/subnets?cidr=10.0.0.0/24").json()["subnets"]}
            assert subnets == {mine["id"]}
    finally:
        for api, n, p in made:
            api("DELETE", f"/v2.0/ports/{p['id']}")
            api("DELETE", f"/v2.0/networks/{n['id']}")
