"""The placement API over raw HTTP with an admin token, and through openstackclient's placement plugin."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


class Client:
    def __init__(self, live: LiveCloud, cloud: str = "admin", version: str = "1.28") -> None:
        self.url = live.url("placement")
        self.headers = {"X-Auth-Token": live.conn(cloud).auth_token, "OpenStack-API-Version": f"placement {version}"}

    def __call__(self, method: str, path: str, json: Any = None, version: str | None = None) -> requests.Response:
        headers = dict(self.headers)
        if version:
            headers["OpenStack-API-Version"] = f"placement {version}"
        return requests.request(method, self.url + path, json=json, headers=headers, timeout=30)


@pytest.fixture
def api(live: LiveCloud) -> Client:
    return Client(live)


@pytest.fixture
def provider(api: Client) -> Iterator[dict[str, Any]]:
    r = api("POST", "/resource_providers", {"name": f"test-rp-{uuid.uuid4().hex[:8]}"})
    assert r.status_code == 200, r.text
    rp = r.json()
    r = api("PUT", f"/resource_providers/{rp['uuid']}/inventories", {
        "resource_provider_generation": rp["generation"],
        "inventories": {"VCPU": {"total": 4, "allocation_ratio": 2.0}, "MEMORY_MB": {"total": 2048, "reserved": 512},
                        "DISK_GB": {"total": 10}}})
    assert r.status_code == 200, r.text
    yield api("GET", f"/resource_providers/{rp['uuid']}").json()
    allocs = api("GET", f"/resource_providers/{rp['uuid']}/allocations").json()["allocations"]
    for consumer in allocs:
        api("DELETE", f"/allocations/{consumer}")
    api("DELETE", f"/resource_providers/{rp['uuid']}")


def test_version_document_and_negotiation(api: Client) -> None:
    doc = api("GET", "/").json()["versions"][0]
    assert doc["id"] == "v1.0" and doc["min_version"] == "1.0" and doc["max_version"] == "1.28"
    r = api("GET", "/", version="1.99")
    assert r.status_code == 406 and r.json()["errors"][0]["max_version"] == "1.28"
    r = api("GET", "/resource_providers", version="1.99")
    assert r.status_code == 406 and r.json()["errors"][0]["status"] == 406


def test_provider_crud_and_generation_conflicts(api: Client, provider: dict[str, Any]) -> None:
    u, gen = provider["uuid"], provider["generation"]
    assert provider["root_provider_uuid"] == u and provider["parent_provider_uuid"] is None
    inv = api("GET", f"/resource_providers/{u}/inventories").json()
    assert inv["resource_provider_generation"] == gen
    assert inv["inventories"]["VCPU"] == {"total": 4, "reserved": 0, "min_unit": 1, "max_unit": 4, "step_size": 1,
                                          "allocation_ratio": 2.0}
    stale = {"resource_provider_generation": gen - 1, "inventories": {"VCPU": {"total": 8}}}
    r = api("PUT", f"/resource_providers/{u}/inventories", stale)
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "placement.concurrent_update"
    assert api("GET", f"/resource_providers/{u}/inventories/VCPU").json()["total"] == 4  # nothing written
    r = api("PUT", f"/resource_providers/{u}", {"name": provider["name"] + "-renamed"})
    assert r.status_code == 200 and r.json()["name"].endswith("-renamed")
    listed = api("GET", f"/resource_providers?name={provider['name']}-renamed").json()["resource_providers"]
    assert [p["uuid"] for p in listed] == [u]
    assert api("GET", f"/resource_providers/{uuid.uuid4()}").status_code == 404


def test_bad_input_is_400_in_placement_format(api: Client, provider: dict[str, Any]) -> None:
    u = provider["uuid"]
    r = api("PUT", f"/resource_providers/{u}/inventories", {"resource_provider_generation": provider["generation"],
                                                            "inventories": {"VCPU": {"total": -1}}})
    assert r.status_code == 400 and r.json()["errors"][0]["title"] == "Bad Request"
    assert api("POST", "/resource_providers", {"nome": "x"}).status_code == 400
    assert api("GET", "/allocation_candidates?resources=VCPU").status_code == 400
    assert api("GET", "/allocation_candidates?resources=NOPE:1").status_code == 400
    assert api("GET", "/resource_providers?bogus=1").status_code == 400
    assert api("PUT", "/allocations/not-a-uuid", {}).status_code == 400
    assert api("GET", f"/resource_providers/{u}").json()["generation"] == provider["generation"]


def test_allocations_usages_and_candidates(api: Client, provider: dict[str, Any]) -> None:
    u = provider["uuid"]
    vm, project = str(uuid.uuid4()), uuid.uuid4().hex
    body = {"allocations": {u: {"resources": {"VCPU": 2, "MEMORY_MB": 512}}}, "project_id": project,
            "user_id": "someone", "consumer_generation": None}
    assert api("PUT", f"/allocations/{vm}", body).status_code == 204
    got = api("GET", f"/allocations/{vm}").json()
    assert got["allocations"][u]["resources"] == {"VCPU": 2, "MEMORY_MB": 512} and got["consumer_generation"] == 1
    r = api("PUT", f"/allocations/{vm}", body)  # consumer_generation None, but it exists now
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "placement.concurrent_update"
    assert api("GET", f"/resource_providers/{u}/usages").json()["usages"] == {"VCPU": 2, "MEMORY_MB": 512,
                                                                                  "DISK_GB": 0}
    assert api("GET", f"/usages?project_id={project}").json()["usages"] == {"VCPU": 2, "MEMORY_MB": 512}
    too_much = {**body, "allocations": {u: {"resources": {"VCPU": 7}}}, "consumer_generation": 1}
    assert api("PUT", f"/allocations/{vm}", too_much).status_code == 409  # 8 VCPU capacity, 2 in use by vm
    ac = api("GET", "/allocation_candidates?resources=VCPU:6,MEMORY_MB:512&limit=5").json()
    assert u not in ac["provider_summaries"]  # only 6 VCPU left and 1024 MB of 1536
    ac = api("GET", "/allocation_candidates?resources=VCPU:1,MEMORY_MB:512").json()
    assert {"allocations": {u: {"resources": {"VCPU": 1, "MEMORY_MB": 512}}}} in ac["allocation_requests"]
    assert ac["provider_summaries"][u]["resources"]["VCPU"] == {"capacity": 8, "used": 2}
    other = str(uuid.uuid4())
    post = {vm: {**body, "allocations": {}, "consumer_generation": 1},
            other: {**body, "allocations": {u: {"resources": {"DISK_GB": 3}}}}}
    assert api("POST", "/allocations", post).status_code == 204
    assert api("GET", f"/allocations/{vm}").json() == {"allocations": {}}
    assert api("GET", f"/resource_providers/{u}/usages").json()["usages"]["DISK_GB"] == 3
    assert api("DELETE", f"/allocations/{other}").status_code == 204
    assert api("DELETE", f"/allocations/{other}").status_code == 404


def test_traits_aggregates_and_resource_classes(api: Client, provider: dict[str, Any]) -> None:
    u = provider["uuid"]
    name = f"CUSTOM_T_{uuid.uuid4().hex[:6].upper()}"
    assert api("PUT", f"/traits/{name}").status_code == 201
    assert api("PUT", f"/traits/{name}").status_code == 204
    assert api("PUT", "/traits/not_custom").status_code == 400
    gen = api("GET", f"/resource_providers/{u}").json()["generation"]
    r = api("PUT", f"/resource_providers/{u}/traits", {"traits": [name, "HW_CPU_X86_AVX"],
                                                       "resource_provider_generation": gen})
    assert r.status_code == 200 and r.json()["traits"] == sorted([name, "HW_CPU_X86_AVX"])
    assert api("DELETE", f"/traits/{name}").status_code == 409  # in use
    ac = api("GET", f"/allocation_candidates?resources=VCPU:1&required={name}").json()
    assert list(ac["provider_summaries"]) == [u] and name in ac["provider_summaries"][u]["traits"]
    assert api("GET", f"/allocation_candidates?resources=VCPU:1&required=!{name}").json()[
        "provider_summaries"].get(u) is None
    agg = str(uuid.uuid4())
    gen = r.json()["resource_provider_generation"]
    r = api("PUT", f"/resource_providers/{u}/aggregates", {"aggregates": [agg], "resource_provider_generation": gen})
    assert r.status_code == 200 and r.json()["aggregates"] == [agg]
    listed = api("GET", f"/resource_providers?member_of=in:{agg},{uuid.uuid4()}").json()["resource_providers"]
    assert [p["uuid"] for p in listed] == [u]
    rc = f"CUSTOM_RC_{uuid.uuid4().hex[:6].upper()}"
    assert api("PUT", f"/resource_classes/{rc}").status_code == 201
    assert any(c["name"] == rc for c in api("GET", "/resource_classes").json()["resource_classes"])
    assert api("DELETE", "/resource_classes/VCPU").status_code == 400
    assert api("DELETE", f"/resource_classes/{rc}").status_code == 204
    assert api("DELETE", f"/resource_providers/{u}/traits").status_code == 204
    assert api("DELETE", f"/traits/{name}").status_code == 204


def test_placement_is_admin_only(live: LiveCloud) -> None:
    demo = Client(live, "demo")
    r = demo("GET", "/resource_providers")
    assert r.status_code == 403 and "errors" in r.json()
    assert requests.get(live.url("placement") + "/resource_providers", timeout=30).status_code == 401


@pytest.mark.skipif(not Path(sys.executable).with_name("openstack").exists(), reason="openstackclient is not installed")
def test_osc_placement_plugin(live: LiveCloud, provider: dict[str, Any]) -> None:
    probe = live.cli("resource", "provider", "list", "-f", "json", check=False)
    if "is not an openstack command" in probe.stderr:
        pytest.skip("osc-placement is not installed")
    listed = live.cli_json("resource", "provider", "list")
    assert provider["uuid"] in {p["uuid"] for p in listed}
    inv = live.cli_json("resource", "provider", "inventory", "list", provider["uuid"])
    assert {i["resource_class"]: i["total"] for i in inv} == {"VCPU": 4, "MEMORY_MB": 2048, "DISK_GB": 10}
    cands = live.cli_json("allocation", "candidate", "list", "--resource", "VCPU=1")
    assert provider["uuid"] in {c["resource provider"] for c in cands}
