"""The metadata definitions catalog through openstackclient, openstacksdk and HTTP: the shipped definitions,
an admin's own namespaces, and what members and other projects may not do."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.image.conftest import Api
from tests.livecloud import LiveCloud
from tinystack.image import metadef_seed

pytestmark = [pytest.mark.api, pytest.mark.e2e]
JSON = {"Accept": "application/json"}


def _field(row: dict[str, Any], name: str) -> Any:
    """A column of the client's JSON output, whichever case its headers use."""
    return next((v for k, v in row.items() if k.lower().replace(" ", "_") == name), None)


def _name() -> str:
    return f"Test::NS::{uuid.uuid4().hex[:8]}"


def test_definition_files_are_valid() -> None:
    names = [metadef_seed.read(p)["namespace"] for p in sorted(metadef_seed.DEFINITIONS.glob("*.json"))]
    assert {"OS::Compute::Hypervisor", "OS::Compute::LibvirtImage", "OS::Compute::Libvirt", "OS::Compute::Watchdog",
            "OS::Compute::RandomNumberGenerator", "OS::Glance::CommonImageProperties", "OS::Compute::Quota"} <= set(names)


def test_shipped_definitions_through_the_cli(live: LiveCloud) -> None:
    names = {_field(ns, "namespace") for ns in live.cli_json("image", "metadef", "namespace", "list", cloud="demo")}
    assert {"OS::Compute::Watchdog", "OS::Compute::Quota", "OS::Glance::CommonImageProperties"} <= names
    shown = live.cli_json("image", "metadef", "namespace", "show", "OS::Compute::Watchdog", cloud="demo")
    assert shown["protected"] is True and shown["visibility"] == "public"
    props = live.cli_json("image", "metadef", "property", "list", "OS::Compute::Watchdog", cloud="demo")
    assert [_field(p, "name") for p in props] == ["watchdog_action"]
    prop = live.cli_json("image", "metadef", "property", "show", "OS::Compute::Watchdog", "watchdog_action",
                         cloud="demo")
    assert "poweroff" in prop["enum"] and prop["type"] == "string"
    objects = live.cli_json("image", "metadef", "object", "list", "OS::Compute::Quota", cloud="demo")
    assert {"CPU Limits", "Disk QoS", "Virtual Interface QoS"} <= {_field(o, "name") for o in objects}
    types = {_field(t, "name") for t in live.cli_json("image", "metadef", "resource", "type", "list", cloud="demo")}
    assert {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"} <= types
    assocs = live.cli_json("image", "metadef", "resource", "type", "association", "list", "OS::Compute::Watchdog",
                           cloud="demo")
    assert {_field(a, "name") for a in assocs} == {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"}


def test_filters_paging_and_schemas(demo_api: Api) -> None:
    r = demo_api("GET", "/v2/metadefs/namespaces?resource_types=OS::Nova::Flavor")
    flavor_ns = {ns["namespace"] for ns in r.json()["namespaces"]}
    assocs = demo_api("GET", "/v2/metadefs/namespaces/OS::Compute::Watchdog/resource_types").json()
    assert {(a["name"], a.get("prefix"), a.get("properties_target")) for a in assocs["resource_type_associations"]} == {
        ("OS::Glance::Image", "hw_", None), ("OS::Nova::Flavor", "hw:", None), ("OS::Cinder::Volume", "hw_", "image")}
    assert "OS::Compute::Quota" in flavor_ns and "OS::Compute::Hypervisor" not in flavor_ns
    page = demo_api("GET", "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc").json()
    assert len(page["namespaces"]) == 2 and "next" in page
    following = demo_api("GET", page["next"]).json()["namespaces"]
    assert following and following[0]["namespace"] > page["namespaces"][1]["namespace"]
    for name in ("namespace", "namespaces", "object", "objects", "property", "properties", "tag", "tags",
                 "resource_type", "resource_types"):
        r = demo_api("GET", f"/v2/schemas/metadefs/{name}")
        assert r.status_code == 200 and r.json()["name"] == name.replace("resource_type", "resource_type_association")
    assert demo_api("GET", "/v2/schemas/metadefs/nope").status_code == 404
    for query in ("limit=x", "sort_key=owner", "sort_dir=up", "visibility=shared", "marker=Nope::Nope"):
        r = demo_api("GET", f"/v2/metadefs/namespaces?{query}", headers=JSON)
        assert r.status_code == 400 and r.json()["code"].startswith("400"), query


def test_admin_builds_a_namespace_with_the_cli_and_sdk(live: LiveCloud) -> None:
    name = _name()
    created = live.cli_json("image", "metadef", "namespace", "create", name, "--display-name", "Mine",
                            "--description", "a test namespace", "--private")
    assert created["namespace"] == name and created["visibility"] == "private"
    live.cli("image", "metadef", "property", "create", name, "--name", "speed", "--title", "Speed",
             "--type", "integer", "--schema", json.dumps({"minimum": 1, "maximum": 10}))
    assert live.cli_json("image", "metadef", "property", "show", name, "speed")["maximum"] == 10
    live.cli("image", "metadef", "property", "set", name, "speed", "--title", "Velocity")
    assert live.cli_json("image", "metadef", "property", "show", name, "speed")["title"] == "Velocity"
    live.cli("image", "metadef", "namespace", "set", name, "--display-name", "Renamed", "--public")
    shown = live.cli_json("image", "metadef", "namespace", "show", name)
    assert shown["display_name"] == "Renamed" and shown["visibility"] == "public"
    live.cli("image", "metadef", "resource", "type", "association", "create", name, "OS::Glance::Image",
             "--properties-target", "image")
    conn = live.conn("admin")
    obj = conn.image.create_metadef_object(name, name="Box", description="a box", required=["size"],
                                           properties={"size": {"title": "Size", "type": "integer"}})
    assert obj.name == "Box" and obj.required == ["size"]
    conn.image.add_tag_to_metadef_namespace(conn.image.get_metadef_namespace(name), "red")
    detail = conn.image.get_metadef_namespace(name)
    assert detail.tags == ["red"] or [t["name"] for t in detail.tags] == ["red"]
    assert detail.resource_type_associations[0]["properties_target"] == "image"
    live.cli("image", "metadef", "object", "delete", name, "Box")
    assert live.cli_json("image", "metadef", "object", "list", name) == []
    live.cli("image", "metadef", "property", "delete", name, "speed")
    live.cli("image", "metadef", "resource", "type", "association", "delete", name, "OS::Glance::Image")
    live.cli("image", "metadef", "namespace", "delete", name)
    assert name not in {_field(n, "namespace") for n in live.cli_json("image", "metadef", "namespace", "list")}


def test_tags(admin_api: Api, demo_api: Api) -> None:
    name = _name()
    assert admin_api("POST", "/v2/metadefs/namespaces", json={"namespace": name}).status_code == 201
    base = f"/v2/metadefs/namespaces/{name}/tags"
    r = admin_api("POST", base, json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert r.status_code == 201 and [t["name"] for t in r.json()["tags"]] == ["a", "b"]
    assert admin_api("POST", f"{base}/c").status_code == 201
    assert admin_api("POST", f"{base}/c").status_code == 409
    r = admin_api("POST", base, json={"tags": [{"name": "d"}]}, headers={"X-OpenStack-Append": "True"})
    assert {t["name"] for t in r.json()["tags"]} == {"a", "b", "c", "d"}
    r = admin_api("PUT", f"{base}/d", json={"name": "e"})
    assert r.status_code == 200 and r.json()["name"] == "e"
    assert admin_api("GET", f"{base}/e").json()["name"] == "e"
    assert admin_api("DELETE", f"{base}/a").status_code == 204
    assert admin_api("GET", f"{base}/a").status_code == 404
    assert demo_api("DELETE", f"{base}/b").status_code == 403  # the rule comes first: admin only
    assert demo_api("GET", f"{base}/b").status_code == 404  # private to the admin's project
    r = admin_api("POST", base, json={"tags": [{"name": "x"}]})
    assert [t["name"] for t in r.json()["tags"]] == ["x"]
    assert admin_api("DELETE", base).status_code == 204
    assert admin_api("GET", base).json()["tags"] == []
    admin_api("DELETE", f"/v2/metadefs/namespaces/{name}")


def test_negative_cases(live: LiveCloud, admin_api: Api, demo_api: Api, alt_api: Api) -> None:
    name = _name()
    body = {"namespace": name, "visibility": "private", "properties": {"p": {"title": "P", "type": "string"}}}
    # Members may read but not change the catalog.
    r = demo_api("POST", "/v2/metadefs/namespaces", json=body, headers=JSON)
    assert r.status_code == 403 and r.json()["code"].startswith("403")
    r = live.cli("image", "metadef", "namespace", "create", name, cloud="demo", check=False)
    assert r.returncode != 0 and "403" in r.stderr
    assert demo_api("DELETE", "/v2/metadefs/namespaces/OS::Compute::Watchdog").status_code == 403
    assert demo_api("POST", "/v2/metadefs/namespaces/OS::Compute::Watchdog/properties",
                    json={"name": "x", "title": "X", "type": "string"}).status_code == 403
    # Another project's private namespace does not exist for them.
    assert admin_api("POST", "/v2/metadefs/namespaces", json=body).status_code == 201
    for path in ("", "/properties", "/properties/p", "/objects", "/tags", "/resource_types"):
        assert alt_api("GET", f"/v2/metadefs/namespaces/{name}{path}").status_code == 404, path
    assert name not in {n["namespace"] for n in alt_api("GET", "/v2/metadefs/namespaces").json()["namespaces"]}
    # Bad input is a 400 in Glance's format and changes nothing; a duplicate is a 409.
    for bad in ({"namespace": ""}, {"namespace": "x" * 81}, {"visibility": "public"},
                {"namespace": "y", "visibility": "shared"}, {"namespace": "y", "bogus": 1},
                {"namespace": "y", "properties": {"p": {"type": "string"}}}, [1]):
        r = admin_api("POST", "/v2/metadefs/namespaces", json=bad, headers=JSON)
        assert r.status_code == 400 and r.json()["code"].startswith("400"), bad
    assert admin_api("POST", "/v2/metadefs/namespaces", json=body).status_code == 409
    props = f"/v2/metadefs/namespaces/{name}/properties"
    assert admin_api("POST", props, json={"name": "q", "title": "Q", "type": "colour"}).status_code == 400
    assert admin_api("POST", props, json={"name": "p", "title": "P", "type": "string"}).status_code == 409
    assert admin_api("GET", f"/v2/metadefs/namespaces/{name}/widgets").status_code == 404
    assert admin_api("GET", "/v2/metadefs/namespaces/No::Such").status_code == 404
    # A protected namespace cannot be deleted, nor lose what it defines.
    put = {"namespace": name, "protected": True}
    assert admin_api("PUT", f"/v2/metadefs/namespaces/{name}", json=put).status_code == 200
    assert admin_api("DELETE", f"{props}/p").status_code == 403
    assert admin_api("DELETE", f"/v2/metadefs/namespaces/{name}").status_code == 403
    put["protected"] = False
    assert admin_api("PUT", f"/v2/metadefs/namespaces/{name}", json=put).status_code == 200
    assert admin_api("DELETE", f"/v2/metadefs/namespaces/{name}").status_code == 204


def test_definitions_load_once(live: LiveCloud, admin_api: Api, tmp_path: Path) -> None:
    assert live.cloud.runtime is not None
    svc = live.cloud.runtime.services["image"]
    doc = {"namespace": _name(), "visibility": "public", "protected": False,
           "resource_types": [{"name": "OS::Glance::Image"}], "properties": {"z": {"title": "Z", "type": "string"}}}
    (tmp_path / "extra.json").write_text(json.dumps(doc))
    assert metadef_seed.load(svc, tmp_path) == [doc["namespace"]]
    assert admin_api("DELETE", f"/v2/metadefs/namespaces/{doc['namespace']}").status_code == 204
    assert metadef_seed.load(svc, tmp_path) == []  # deleted by an operator: it stays deleted
