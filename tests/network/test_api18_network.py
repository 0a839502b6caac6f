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
