"""IPAM under concurrency: many clients creating ports on a /28 at once never get the same address, and
exhaustion is a clean 409 IpAddressGenerationFailure. Also through the service object directly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.livecloud import LiveCloud
from tests.network.conftest import Neutron, neutron_error, unique
from tinystack.core.auth import RequestContext

pytestmark = pytest.mark.api


def test_concurrent_ports_on_a_28(demo_api: Neutron) -> None:
    n = demo_api("POST", "/v2.0/networks", {"network": {"name": unique("ipam")}}).json()["network"]
    try:
        demo_api("POST", "/v2.0/subnets", {"subnet": {"network_id": n["id"], "cidr": "10.60.0.0/28",
                                                      "ip_version": 4, "enable_dhcp": False}})
        # 13 usable addresses (.2-.14); 20 concurrent requests.
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda _: demo_api("POST", "/v2.0/ports", {"port": {"network_id": n["id"]}}),
                                    range(20)))
        ok = [r.json()["port"] for r in results if r.status_code == 201]
        failed = [r for r in results if r.status_code != 201]
        assert len(ok) == 13
        for r in failed:
            neutron_error(r, 409, "IpAddressGenerationFailure")
        ips = [p["fixed_ips"][0]["ip_address"] for p in ok]
        assert len(set(ips)) == len(ips) == 13
        assert {p["mac_address"] for p in ok}.__len__() == 13
        listed = demo_api("GET", f"/v2.0/ports?network_id={n['id']}").json()["ports"]
        assert len(listed) == 13
        # giving one back makes exactly that one available again
        demo_api("DELETE", f"/v2.0/ports/{ok[0]['id']}")
        again = demo_api("POST", "/v2.0/ports", {"port": {"network_id": n["id"]}}).json()["port"]
        assert again["fixed_ips"][0]["ip_address"] == ips[0]
    finally:
        for p in demo_api("GET", f"/v2.0/ports?network_id={n['id']}").json()["ports"]:
            demo_api("DELETE", f"/v2.0/ports/{p['id']}")
        demo_api("DELETE", f"/v2.0/networks/{n['id']}")


def test_service_object_concurrency(live: LiveCloud) -> None:
    svc = live.cloud.runtime.services["network"]  # type: ignore[union-attr]
    demo = live.conn("demo")
    ctx = RequestContext(user_id="u", project_id=demo.current_project_id, roles=("member",))
    net = svc.create(ctx, "networks", {"network": {"name": unique("svc")}})["network"]
    try:
        svc.create(ctx, "subnets", {"subnet": {"network_id": net["id"], "cidr": "10.61.0.0/28", "ip_version": 4,
                                               "enable_dhcp": False}})
        def make(_: int) -> str | None:
            try:
                return svc.create_port(ctx, {"port": {"network_id": net["id"]}})["fixed_ips"][0]["ip_address"]
            except Exception as exc:
                assert getattr(exc, "details", {}).get("type") == "IpAddressGenerationFailure", exc
                return None
        with ThreadPoolExecutor(max_workers=8) as pool:
            ips = [ip for ip in pool.map(make, range(16)) if ip]
        assert len(ips) == len(set(ips)) == 13
        ports = svc.list_ports(ctx, {"network_id": net["id"]})
        assert svc.port_statuses([p["id"] for p in ports]) == {p["id"]: "DOWN" for p in ports}
    finally:
        for p in svc.list_ports(ctx, {"network_id": net["id"]}):
            svc.delete_port(ctx, p["id"])
        svc.delete(ctx, "networks", net["id"])
