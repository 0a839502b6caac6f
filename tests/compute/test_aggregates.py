"""Host aggregates end to end: openstackclient's aggregate commands, Nova's refusals and microversions, the
zone an aggregate gives its hosts (zone list, the server's OS-EXT-AZ), the scheduler's zone and extra-spec
filters, and the membership mirrored in placement."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.compute.test_servers import Nova
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def _server(live: LiveCloud, name: str, image_id: str, *extra: str) -> dict[str, Any]:
    live.cli("server", "create", "--image", image_id, "--flavor", "m1.nano", "--no-network", *extra, name,
             cloud="admin")
    deadline = time.monotonic() + 30
    while True:
        server: dict[str, Any] = live.cli_json("server", "show", name)
        if server["status"] in ("ACTIVE", "ERROR"):
            return server
        assert time.monotonic() < deadline, f"{name} stayed {server['status']}"
        time.sleep(0.2)


@pytest.fixture
def cleanup(live: LiveCloud) -> Iterator[list[str]]:
    """Aggregates (by name) to empty and delete after the test, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        shown = live.cli("aggregate", "show", name, "-f", "json", check=False)
        if shown.returncode == 0:
            for host in live.cli_json("aggregate", "show", name)["hosts"]:
                live.cli("aggregate", "remove", "host", name, host, check=False)
            live.cli("aggregate", "delete", name, check=False)


def test_aggregate_commands(live: LiveCloud, fake_host: str, cleanup: list[str]) -> None:
    cleanup += ["agg-cli", "agg-cli-2"]
    made = live.cli_json("aggregate", "create", "--zone", "az-cli", "--property", "ssd=true", "agg-cli")
    assert made["name"] == "agg-cli" and made["availability_zone"] == "az-cli"
    listed = {a["Name"]: a for a in live.cli_json("aggregate", "list", "--long")}
    assert listed["agg-cli"]["Availability Zone"] == "az-cli"
    shown = live.cli_json("aggregate", "show", "agg-cli")
    assert shown["hosts"] == [] and shown["properties"] == {"ssd": "true"}

    live.cli("aggregate", "set", "--name", "agg-cli-2", "--zone", "az-cli-2", "--property", "gpu=1", "agg-cli")
    shown = live.cli_json("aggregate", "show", "agg-cli-2")
    assert shown["availability_zone"] == "az-cli-2" and shown["properties"] == {"ssd": "true", "gpu": "1"}
    live.cli("aggregate", "unset", "--property", "ssd", "agg-cli-2")
    assert live.cli_json("aggregate", "show", "agg-cli-2")["properties"] == {"gpu": "1"}

    added = live.cli_json("aggregate", "add", "host", "agg-cli-2", fake_host)
    assert added["hosts"] == [fake_host]
    zones = {z["Zone Name"]: z for z in live.cli_json("availability", "zone", "list", "--compute", "--long")}
    assert zones["az-cli-2"]["Host Name"] == fake_host and zones["az-cli-2"]["Zone Status"] == "available"
    service = next(s for s in live.cli_json("compute", "service", "list")
                   if s["Host"] == fake_host and s["Binary"] == "nova-compute")
    assert service["Zone"] == "az-cli-2"
    # The membership is mirrored in placement under the aggregate's uuid.
    rp = live.cli_json("resource", "provider", "list", "--name", fake_host)[0]["uuid"]
    agg_uuid = Nova(live, "admin")("GET", f"/os-aggregates/{shown['id']}").json()["aggregate"]["uuid"]
    in_placement = live.cli_json("--os-placement-api-version", "1.19", "resource", "provider", "aggregate",
                                 "list", rp)
    assert agg_uuid in {a["uuid"] for a in in_placement}

    removed = live.cli_json("aggregate", "remove", "host", "agg-cli-2", fake_host)
    assert removed["hosts"] == []
    assert agg_uuid not in {a["uuid"] for a in live.cli_json("--os-placement-api-version", "1.19", "resource",
                                                              "provider", "aggregate", "list", rp)}
    live.cli("aggregate", "delete", "agg-cli-2")
    assert "agg-cli-2" not in {a["Name"] for a in live.cli_json("aggregate", "list")}


def test_refusals_and_microversions(live: LiveCloud, fake_host: str, cleanup: list[str]) -> None:
    cleanup += ["agg-api", "agg-api-zone"]
    nova, old, demo = Nova(live, "admin"), Nova(live, "admin", "2.40"), Nova(live, "demo")
    r = nova("POST", "/os-aggregates", json={"aggregate": {"name": "agg-api"}})
    assert r.status_code == 200, r.text
    agg = r.json()["aggregate"]
    assert agg["availability_zone"] is None and "hosts" not in agg and "metadata" not in agg
    assert agg["deleted"] is False and agg["deleted_at"] is None and agg["updated_at"] is None
    ident = agg["id"]
    assert isinstance(ident, int) and agg["uuid"]
    assert "uuid" not in old("GET", f"/os-aggregates/{ident}").json()["aggregate"]  # uuid from 2.41

    assert nova("POST", "/os-aggregates", json={"aggregate": {"name": "agg-api"}}).status_code == 409
    assert nova("POST", "/os-aggregates", json={"aggregate": {"name": ""}}).status_code == 400
    assert nova("POST", "/os-aggregates", json={"aggregate": {"name": "x", "availability_zone": "a:b"}}).status_code == 400
    assert demo("GET", "/os-aggregates").status_code == 403
    assert demo("POST", f"/os-aggregates/{ident}/action", json={"add_host": {"host": fake_host}}).status_code == 403
    assert nova("GET", "/os-aggregates/-1").status_code == 404
    assert nova("GET", "/os-aggregates/abc").status_code == 400

    def act(body: dict[str, Any], target: int = ident) -> Any:
        return nova("POST", f"/os-aggregates/{target}/action", json=body)

    assert act({"add_host": {"host": "no-such-host"}}).status_code == 404
    assert act({"remove_host": {"host": fake_host}}).status_code == 404  # not a member
    assert act({"add_host": {"host": fake_host}}).status_code == 200
    assert act({"add_host": {"host": fake_host}}).status_code == 409  # already a member
    assert nova("DELETE", f"/os-aggregates/{ident}").status_code == 400  # not empty
    meta = act({"set_metadata": {"metadata": {"a": "1", "b": "2"}}}).json()["aggregate"]["metadata"]
    assert meta == {"a": "1", "b": "2"}
    assert act({"set_metadata": {"metadata": {"a": None, "nothing": None}}}).json()["aggregate"]["metadata"] == {"b": "2"}
    assert act({"set_metadata": {"metadata": {"availability_zone": "az-api"}}}).json()["aggregate"][
        "availability_zone"] == "az-api"
    assert act({"set_metadata": {"metadata": {"availability_zone": None}}}).status_code == 400  # cannot empty it
    assert act({"frobnicate": {}}).status_code == 400

    # A host is in one zone only: another aggregate with another zone cannot take it, nor take a zone.
    other = nova("POST", "/os-aggregates", json={"aggregate": {"name": "agg-api-zone", "availability_zone": "az-o"}})
    other_id = other.json()["aggregate"]["id"]
    assert act({"add_host": {"host": fake_host}}, other_id).status_code == 409
    plain = nova("PUT", f"/os-aggregates/{other_id}", json={"aggregate": {"availability_zone": "az-api"}})
    assert plain.status_code == 200 and plain.json()["aggregate"]["availability_zone"] == "az-api"
    assert act({"add_host": {"host": fake_host}}, other_id).status_code == 200  # same zone: fine
    clash = nova("PUT", f"/os-aggregates/{other_id}", json={"aggregate": {"availability_zone": "az-elsewhere"}})
    assert clash.status_code == 400, clash.text
    assert nova("PUT", f"/os-aggregates/{other_id}", json={"aggregate": {"name": "agg-api"}}).status_code == 409
    assert act({"remove_host": {"host": fake_host}}, other_id).status_code == 200
    assert nova("DELETE", f"/os-aggregates/{other_id}").status_code == 200
    assert act({"remove_host": {"host": fake_host}}).status_code == 200
    assert nova("DELETE", f"/os-aggregates/{ident}").status_code == 200
    assert nova("GET", f"/os-aggregates/{ident}").status_code == 404


def test_zones_and_extra_specs_steer_the_scheduler(live: LiveCloud, fake_host: str, image_id: str,
                                                   cleanup: list[str]) -> None:
    cleanup.append("agg-sched")
    live.cli("aggregate", "create", "--zone", "az-sched", "--property", "disk=ssd", "agg-sched")
    live.cli("aggregate", "add", "host", "agg-sched", fake_host)
    flavor = live.cli_json("flavor", "create", "--ram", "64", "--disk", "1", "--vcpus", "1",
                           "--property", "aggregate_instance_extra_specs:disk=ssd", "ssd-only")
    names = []
    try:
        names.append("in-zone")
        inside = _server(live, "in-zone", image_id, "--availability-zone", "az-sched")
        assert inside["status"] == "ACTIVE", inside.get("fault")
        assert inside["OS-EXT-AZ:availability_zone"] == "az-sched"
        assert inside["OS-EXT-SRV-ATTR:host"] == fake_host
        # Without a zone a server lands on the only host too, and takes that host's zone.
        names.append("no-zone")
        assert _server(live, "no-zone", image_id)["OS-EXT-AZ:availability_zone"] == "az-sched"
        # The default zone has no host left.
        names.append("default-zone")
        refused = _server(live, "default-zone", image_id, "--availability-zone", "nova")
        assert refused["status"] == "ERROR" and "AvailabilityZoneFilter" in refused["fault"]["message"]

        names.append("ssd")
        ssd = _server(live, "ssd", image_id, "--flavor", "ssd-only")
        assert ssd["status"] == "ACTIVE", ssd.get("fault")
        live.cli("aggregate", "set", "--property", "disk=hdd", "agg-sched")
        names.append("ssd-2")
        refused = _server(live, "ssd-2", image_id, "--flavor", "ssd-only")
        assert refused["status"] == "ERROR"
        assert "AggregateInstanceExtraSpecsFilter" in refused["fault"]["message"]
    finally:
        live.cli("server", "delete", "--wait", *names, check=False)
        live.cli("flavor", "delete", flavor["id"], check=False)
