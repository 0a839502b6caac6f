"""Regions, services and endpoints through the openstack CLI, openstacksdk and raw HTTP against a live
cloud: the hierarchy and existence rules, the refusals, and the catalog new tokens carry."""

from __future__ import annotations

import secrets
from typing import Any

import openstack
import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


class Caller:
    """Raw Keystone calls with one token, for the status codes and bodies the clients hide."""

    def __init__(self, live: LiveCloud, token: str | None) -> None:
        assert token
        self.base = live.url("identity")
        self.token = token

    def __call__(self, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
        return requests.request(method, self.base + path, json=body, params=params or None,
                                headers={"X-Auth-Token": self.token}, timeout=10)


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def admin(live: LiveCloud) -> Caller:
    return Caller(live, live.conn("admin").auth_token)


@pytest.fixture(scope="module")
def demo(live: LiveCloud) -> Caller:
    return Caller(live, live.conn("demo").auth_token)


def _service(admin: Caller, **fields: Any) -> dict[str, Any]:
    r = admin("POST", "/services", {"service": {"type": _unique("type"), "name": _unique("svc"), **fields}})
    assert r.status_code == 201, r.text
    return r.json()["service"]  # type: ignore[no-any-return]


# --- regions -------------------------------------------------------------------------------------


def test_region_cli_lifecycle(live: LiveCloud) -> None:
    parent, child = _unique("parent"), _unique("child")
    live.cli("region", "create", "--description", "top", parent)
    created = live.cli_json("region", "create", "--parent-region", parent, "--description", "below", child)
    assert created["parent_region"] == parent and created["description"] == "below"

    assert {parent, child} <= {r["Region"] for r in live.cli_json("region", "list")}
    assert [r["Region"] for r in live.cli_json("region", "list", "--parent-region", parent)] == [child]
    live.cli("region", "set", "--description", "renamed", child)
    assert live.cli_json("region", "show", child)["description"] == "renamed"
    live.cli("region", "delete", child)
    live.cli("region", "delete", parent)
    assert live.cli("region", "show", parent, check=False).returncode != 0


def test_region_ids_put_and_hierarchy(admin: Caller, demo: Caller) -> None:
    generated = admin("POST", "/regions", {"region": {"description": "auto"}})
    assert generated.status_code == 201
    auto = generated.json()["region"]
    assert len(auto["id"]) == 32 and auto["parent_region_id"] is None
    assert auto["links"]["self"].endswith(f"/v3/regions/{auto['id']}")
    assert admin("POST", "/regions", {"region": {"id": ""}}).status_code == 201

    rid = _unique("put")
    r = admin("PUT", f"/regions/{rid}", {"region": {"description": "by put", "parent_region_id": auto["id"]}})
    assert r.status_code == 201 and r.json()["region"]["id"] == rid
    assert admin("PUT", f"/regions/{rid}", {"region": {}}).status_code == 409
    assert admin("POST", "/regions", {"region": {"id": rid}}).status_code == 409
    assert admin("PUT", f"/regions/{_unique('a')}", {"region": {"id": "b"}}).status_code == 400
    assert admin("PUT", f"/regions/{'r' * 256}", {"region": {}}).status_code == 400

    # A missing parent is Keystone's RegionNotFound; nothing is created.
    orphan = _unique("orphan")
    assert admin("PUT", f"/regions/{orphan}", {"region": {"parent_region_id": "nope"}}).status_code == 404
    assert admin("GET", f"/regions/{orphan}").status_code == 404
    # Loops are refused, at any depth.
    assert admin("PATCH", f"/regions/{auto['id']}", {"region": {"parent_region_id": rid}}).status_code == 400
    assert admin("PATCH", f"/regions/{rid}", {"region": {"parent_region_id": rid}}).status_code == 400
    assert admin("GET", f"/regions/{auto['id']}").json()["region"]["parent_region_id"] is None
    assert admin("PATCH", f"/regions/{rid}", {"region": {"id": "other"}}).status_code == 400
    assert admin("PATCH", f"/regions/{rid}", {"region": {}}).status_code == 400
    r = admin("PATCH", f"/regions/{rid}", {"region": {"parent_region_id": None, "colour": "red"}})
    assert r.status_code == 200 and r.json()["region"]["parent_region_id"] is None
    assert r.json()["region"]["colour"] == "red"

    # Any user may read regions; only admins change them.
    assert demo("GET", f"/regions/{rid}").status_code == 200
    assert demo("POST", "/regions", {"region": {}}).status_code == 403
    assert demo("DELETE", f"/regions/{rid}").status_code == 403
    assert admin("POST", "/regions", {"region": {"description": 5}}).status_code == 400
    assert admin("POST", "/regions", {"nope": {}}).status_code == 400
    assert admin("GET", "/regions/no-such-region").status_code == 404
    head = admin("HEAD", f"/regions/{rid}")
    assert head.status_code == 200 and head.content == b""
    assert admin("HEAD", "/regions/no-such-region").status_code == 404
    for region in (rid, auto["id"]):
        assert admin("DELETE", f"/regions/{region}").status_code == 204


def test_region_delete_takes_children_unless_endpoints(admin: Caller) -> None:
    top, mid, leaf = _unique("top"), _unique("mid"), _unique("leaf")
    admin("PUT", f"/regions/{top}", {"region": {}})
    admin("PUT", f"/regions/{mid}", {"region": {"parent_region_id": top}})
    admin("PUT", f"/regions/{leaf}", {"region": {"parent_region_id": mid}})
    service = _service(admin)
    ep = admin("POST", "/endpoints", {"endpoint": {"service_id": service["id"], "interface": "public",
                                                    "url": "http://leaf.example", "region_id": leaf}}).json()["endpoint"]
    r = admin("DELETE", f"/regions/{top}")
    assert r.status_code == 403 and "endpoints" in r.json()["error"]["message"]
    assert admin("GET", f"/regions/{leaf}").status_code == 200
    assert admin("DELETE", f"/endpoints/{ep['id']}").status_code == 204
    assert admin("DELETE", f"/regions/{top}").status_code == 204
    for region in (top, mid, leaf):
        assert admin("GET", f"/regions/{region}").status_code == 404
    admin("DELETE", f"/services/{service['id']}")


# --- services ------------------------------------------------------------------------------------


def test_service_cli_lifecycle(live: LiveCloud) -> None:
    kind, name = _unique("type"), _unique("svc")
    created = live.cli_json("service", "create", "--name", name, "--description", "a test", kind)
    assert created["type"] == kind and created["enabled"] is True
    listed = live.cli_json("service", "list", "--long")
    assert any(s["ID"] == created["id"] and s["Description"] == "a test" for s in listed)
    live.cli("service", "set", "--disable", "--description", "changed", created["id"])
    shown = live.cli_json("service", "show", name)
    assert shown["enabled"] is False and shown["description"] == "changed"
    live.cli("service", "delete", created["id"])
    assert live.cli("service", "show", created["id"], check=False).returncode != 0


def test_service_filters_and_refusals(admin: Caller, demo: Caller) -> None:
    kind = _unique("type")
    one, two = _service(admin, type=kind), _service(admin, type=kind, enabled=False, owner="ops")
    assert two["enabled"] is False and two["owner"] == "ops"
    assert {s["id"] for s in admin("GET", "/services", type=kind).json()["services"]} == {one["id"], two["id"]}
    assert [s["id"] for s in admin("GET", "/services", name=one["name"]).json()["services"]] == [one["id"]]
    assert admin("GET", "/services", type="no-such-type").json()["services"] == []

    before = admin("GET", "/services").json()["services"]
    assert admin("POST", "/services", {"service": {"name": "no type"}}).status_code == 400
    assert admin("POST", "/services", {"service": {"type": ""}}).status_code == 400
    assert admin("POST", "/services", {"service": {"type": "x", "enabled": "True"}}).status_code == 400
    assert admin("POST", "/services", {"service": {"type": "x", "name": 3}}).status_code == 400
    assert demo("POST", "/services", {"service": {"type": "x"}}).status_code == 403
    assert admin("GET", "/services").json()["services"] == before
    assert demo("GET", "/services").status_code == 403
    assert admin("PATCH", f"/services/{one['id']}", {"service": {"enabled": "no"}}).status_code == 400
    assert admin("PATCH", f"/services/{one['id']}", {"service": {"id": "x"}}).status_code == 400
    assert admin("PATCH", "/services/nope", {"service": {"name": "x"}}).status_code == 404
    assert admin("GET", "/services/nope").status_code == 404
    assert admin("DELETE", "/services/nope").status_code == 404
    for service in (one, two):
        assert admin("DELETE", f"/services/{service['id']}").status_code == 204


# --- endpoints -----------------------------------------------------------------------------------


def test_endpoint_cli_lifecycle(live: LiveCloud, admin: Caller) -> None:
    service = _service(admin)
    created = live.cli_json("endpoint", "create", "--region", "RegionOne", service["id"], "public",
                            "http://example.test:1234/v1/$(project_id)s")
    assert created["region"] == "RegionOne" and created["interface"] == "public"
    listed = live.cli_json("endpoint", "list", "--service", service["id"], "--interface", "public",
                           "--region", "RegionOne")
    assert [e["ID"] for e in listed] == [created["id"]]
    live.cli("endpoint", "set", "--interface", "internal", "--disable", created["id"])
    shown = live.cli_json("endpoint", "show", created["id"])
    assert shown["interface"] == "internal" and shown["enabled"] is False
    live.cli("endpoint", "delete", created["id"])
    assert live.cli("endpoint", "show", created["id"], check=False).returncode != 0
    admin("DELETE", f"/services/{service['id']}")


def test_endpoint_refusals(admin: Caller, demo: Caller) -> None:
    service = _service(admin)

    def create(**fields: Any) -> requests.Response:
        return admin("POST", "/endpoints", {"endpoint": {"service_id": service["id"], "interface": "public",
                                                         "url": "http://ok.example", **fields}})

    before = admin("GET", "/endpoints").json()["endpoints"]
    assert create(interface="private").status_code == 400
    assert create(service_id="no-such-service").status_code == 400
    assert create(region_id="no-such-region").status_code == 400
    assert create(url="").status_code == 400
    assert create(url="not a url").status_code == 400
    assert create(url="http://x/$(password)s").status_code == 400
    assert create(url="http://x/$(project_id").status_code == 400
    assert create(enabled="False").status_code == 400
    assert admin("POST", "/endpoints", {"endpoint": {"service_id": service["id"], "url": "http://x"}}).status_code == 400
    assert demo("POST", "/endpoints", {"endpoint": {"service_id": service["id"], "interface": "public",
                                                    "url": "http://x"}}).status_code == 403
    assert admin("GET", "/endpoints").json()["endpoints"] == before
    assert admin("GET", "/endpoints", interface="private").status_code == 400
    assert demo("GET", "/endpoints").status_code == 403

    ep = create(note="extra").json()["endpoint"]
    assert ep["note"] == "extra" and ep["region_id"] is None and ep["enabled"] is True
    assert admin("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"region_id": "no-such-region"}}).status_code == 400
    assert admin("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"service_id": "nope"}}).status_code == 400
    assert admin("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"enabled": "True"}}).status_code == 400
    assert admin("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"id": "other"}}).status_code == 400
    assert admin("GET", f"/endpoints/{ep['id']}").json()["endpoint"] == ep
    assert admin("GET", "/endpoints/nope").status_code == 404
    assert admin("PATCH", "/endpoints/nope", {"endpoint": {"url": "http://x"}}).status_code == 404
    assert admin("DELETE", "/endpoints/nope").status_code == 404
    admin("DELETE", f"/services/{service['id']}")


def test_endpoint_legacy_region_is_created(admin: Caller) -> None:
    service = _service(admin)
    region = _unique("legacy")
    r = admin("POST", "/endpoints", {"endpoint": {"service_id": service["id"], "interface": "admin",
                                                   "url": "http://x.example", "region": region}})
    assert r.status_code == 201 and r.json()["endpoint"]["region_id"] == region
    assert admin("GET", f"/regions/{region}").status_code == 200
    found = admin("GET", "/endpoints", region_id=region, service_id=service["id"], interface="admin").json()
    assert [e["id"] for e in found["endpoints"]] == [r.json()["endpoint"]["id"]]
    admin("DELETE", f"/services/{service['id']}")
    admin("DELETE", f"/regions/{region}")


# --- the catalog in tokens -----------------------------------------------------------------------


def _catalog(live: LiveCloud) -> list[dict[str, Any]]:
    """The catalog in a freshly issued demo token."""
    conn: openstack.connection.Connection = live.conn("demo")
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": conn.current_user_id, "password": conn.config.auth["password"]}}},
        "scope": {"project": {"id": conn.current_project_id}}}}
    r = requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=10)
    return r.json()["token"]["catalog"]  # type: ignore[no-any-return]


def test_catalog_changes_reach_new_tokens(live: LiveCloud, admin: Caller) -> None:
    service = _service(admin)
    ep = admin("POST", "/endpoints", {"endpoint": {"service_id": service["id"], "interface": "public",
                                                    "region_id": "RegionOne",
                                                    "url": "http://svc.example/$(project_id)s"}}).json()["endpoint"]
    entry = next(e for e in _catalog(live) if e["id"] == service["id"])
    project_id = live.conn("demo").current_project_id
    assert [x["url"] for x in entry["endpoints"]] == [f"http://svc.example/{project_id}"]

    admin("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"enabled": False}})
    assert next(e for e in _catalog(live) if e["id"] == service["id"])["endpoints"] == []
    admin("PATCH", f"/services/{service['id']}", {"service": {"enabled": False}})
    assert all(e["id"] != service["id"] for e in _catalog(live))

    admin("PATCH", f"/services/{service['id']}", {"service": {"enabled": True}})
    admin("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"enabled": True}})
    # An already validated token is re-rendered too: the write dropped the cached validation.
    old_token = live.conn("demo").auth_token
    assert old_token
    validate = {"X-Auth-Token": admin.token, "X-Subject-Token": old_token}
    r = requests.get(live.url("identity") + "/auth/tokens", headers=validate, timeout=10)
    assert any(e["id"] == service["id"] for e in r.json()["token"]["catalog"])
    assert admin("DELETE", f"/services/{service['id']}").status_code == 204
    assert admin("GET", f"/endpoints/{ep['id']}").status_code == 404
    assert all(e["id"] != service["id"] for e in _catalog(live))
    r = requests.get(live.url("identity") + "/auth/tokens", headers=validate, timeout=10)
    assert all(e["id"] != service["id"] for e in r.json()["token"]["catalog"])
