"""Networking behaviours unmodified clients rely on (issue 18): normalised CIDRs, attribute rules checked only
for non-default values, agents filtered by policy, floating IPs' port details, and only served extensions listed."""

from __future__ import annotations

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def test_cidr_with_host_bits_is_normalised(live: LiveCloud) -> None:
    live.cli("network", "create", "hostbits-net", cloud="demo")
    try:
        sub = live.cli_json("subnet", "create", "--network", "hostbits-net", "--subnet-range", "10.99.99.0/16",
                            "hostbits-sub", cloud="demo")
        assert sub["cidr"] == "10.99.0.0/16" and sub["gateway_ip"] == "10.99.0.1"
        bad = live.cli("subnet", "create", "--network", "hostbits-net", "--subnet-range", "10.99.99.300/16",
                       "hostbits-bad", cloud="demo", check=False)
        assert bad.returncode != 0 and "not a valid IP subnet" in bad.stderr + bad.stdout
    finally:
        live.cli("network", "delete", "hostbits-net", cloud="demo")


def test_default_attribute_values_need_no_admin_rule(live: LiveCloud) -> None:
    net = live.cli_json("network", "create", "--no-share", "noshare-net", cloud="demo")
    try:
        assert net["shared"] is False
        # A value other than the default is still the admin's to give.
        shared = live.cli("network", "create", "--share", "share-net", cloud="demo", check=False)
        assert shared.returncode != 0 and "403" in shared.stderr + shared.stdout
        # On update every named attribute is checked, as in Neutron (the clients send only what changed, so
        # this is raw HTTP).
        conn = live.conn("demo")
        r = requests.put(f"{live.url('network')}/v2.0/networks/{net['id']}", json={"network": {"shared": False}},
                         headers={"X-Auth-Token": conn.auth_token}, timeout=10)
        assert r.status_code == 403 and "update_network:shared" in r.text
    finally:
        live.cli("network", "delete", "noshare-net", cloud="demo")
    conn = live.conn("demo")
    pool = conn.network.create_subnet_pool(name="member-pool", prefixes=["10.123.0.0/16"], shared=False,
                                           default_prefix_length=24)
    try:
        assert pool.is_shared is False
    finally:
        conn.network.delete_subnet_pool(pool)
    assert live.cli("network", "list", "--name", "share-net", "-f", "value", cloud="admin").stdout.strip() == ""


def test_agents_list_for_a_member_is_empty_not_forbidden(live: LiveCloud) -> None:
    assert live.cli_json("network", "agent", "list", cloud="demo") == []
    assert list(live.conn("demo").network.agents()) == []
    assert live.cli_json("network", "agent", "list", cloud="admin") != []


def test_extensions_listed_are_served(live: LiveCloud) -> None:
    token = live.conn("demo").auth_token
    base = live.url("network")
    aliases = {e["alias"] for e in requests.get(f"{base}/v2.0/extensions", headers={"X-Auth-Token": token},
                                                timeout=10).json()["extensions"]}
    assert "fip-port-details" in aliases
    # Not served, so not listed: clients skip them cleanly.
    assert not aliases & {"qos", "dvr", "l3-ha", "port-forwarding"}
    # Served now: listed, with its routes answering.
    assert {"trunk", "trunk-details"} <= aliases
    assert requests.get(f"{base}/v2.0/trunks", headers={"X-Auth-Token": token}, timeout=10).status_code == 200
