"""Hostile input against every route of every API: no 5xx, and every 4xx in the API's own fault format.

One cloud of its own (fake drivers; the fuzzer changes and breaks things other tests rely on), one resource of
each cheap kind made up front so path parameters can name real things, then hypothesis (derandomized, a
bounded number of examples per route) sends, as admin and as a project member:

- to every POST/PUT/PATCH route: a valid-looking body with one field replaced by a hostile value (deep
  nesting, integers past int64, lone surrogates, NaN/Infinity, NUL, objects where ids are expected, ...), or a
  wholly hostile body;
- to every GET route: odd query strings (huge integers, percent-encoded surrogates and NUL, repeated keys);
- a request line and a header over aiohttp's limits, to each API once.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api

WRITE_EXAMPLES = 8
QUERY_EXAMPLES = 3

# Markers replaced in the encoded text: values json.dumps cannot write, or would write too big to carry around.
DEEP, HUGE_FLOAT, BAD_UTF8 = "\x01deep\x01", "\x01huge-float\x01", "\x01bad-utf8\x01"

HOSTILE: list[Any] = [DEEP, HUGE_FLOAT, BAD_UTF8, "\ud800", "a\udfffb", "\x00", float("nan"), float("inf"),
                      float("-inf"), 2**63, -(2**63) - 1, 10**30, {"a": 1}, [], [[[[{}]]]], None, True, -1, 0, "",
                      "x" * 70000, "9" * 40, 1.5, "../../etc/passwd", "%s%n", "<script>"]

FIELDS = ["name", "description", "id", "subnet_id", "port_id", "network_id", "project_id", "domain_id", "user_id",
          "enabled", "size", "ram", "vcpus", "disk", "tags", "metadata", "binding:host_id", "fixed_ips", "cidr",
          "ip_version", "password", "extra_specs", "visibility", "min_disk", "status", "type", "blob", "limit",
          "network", "quota_set", "volume_type", "imageRef", "flavorRef", "total", "resources", "traits"]

QUERY_KEYS = ["limit", "marker", "name", "sort_key", "sort_dir", "fields", "all_tenants", "all_projects", "id",
              "status", "page_reverse", "enabled", "domain_id", "changes-since", "changes-before", "detailed", "start",
              "end", "member_of", "resources", "required", "in_tree", "tenant_id", "project_id", "user_id", "visibility",
              "tags", "tags-any", "is_public", "minDisk", "minRam", "offset", "with_count", "parent_id", "deleted",
              "network_id", "device_id", "fixed_ips", "ip_address", "uuid", "limit", "limit", "marker"]

# Already percent-encoded: what a hostile client puts on the wire.
QUERY_VALUES = ["99999999999999999999999", "9223372036854775808", "-9223372036854775809", "-1", "0", "%ED%A0%80",
                "%00", "", "%FF%FE", "1e400", "NaN", "[]", "{}", "a,b,,", "x" * 3000, "true", "%25", "..%2F..",
                "2024-13-45T99:99:99", "resources:VCPU:1", "in:a,b", "!", "%E2%80%AE"]

PATH_VALUES = ["%ED%A0%80", "%00", "9" * 40, "x" * 300, "%25", "..", "-1"]


def _singular(segment: str) -> str:
    word = segment.replace("-", "_").removeprefix("os_")
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


def encode(doc: Any) -> bytes:
    """JSON as a hostile client writes it: NaN, lone surrogates as escapes, the markers expanded."""
    text = json.dumps(doc, allow_nan=True, ensure_ascii=True)
    text = text.replace(json.dumps(DEEP), "[" * 300_000 + "]" * 300_000)
    text = text.replace(json.dumps(HUGE_FLOAT), "1e400")
    raw = text.encode()
    return raw.replace(json.dumps(BAD_UTF8).encode(), b'"\xed\xa0\x80\xff"')


# --- fault formats ---------------------------------------------------------------------------------------


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _keystone(resp: requests.Response) -> bool:
    body = _json(resp)
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("code") == resp.status_code


def _nova(resp: requests.Response) -> bool:
    body = _json(resp)
    return (isinstance(body, dict) and len(body) == 1 and isinstance(inner := next(iter(body.values())), dict)
            and inner.get("code") == resp.status_code and isinstance(inner.get("message"), str))


def _neutron(resp: requests.Response) -> bool:
    body = _json(resp)
    return isinstance(body, dict) and isinstance(body.get("NeutronError"), dict) and "message" in body["NeutronError"]


def _placement(resp: requests.Response) -> bool:
    body = _json(resp)
    return (isinstance(body, dict) and isinstance(body.get("errors"), list) and bool(body["errors"])
            and body["errors"][0].get("status") == resp.status_code)


def _plain(resp: requests.Response) -> bool:
    """Glance's and the metadata API's text (or, for Glance, the JSON its Accept negotiation picks)."""
    if resp.text.startswith(f"{resp.status_code} "):
        return True
    body = _json(resp)
    return isinstance(body, dict) and str(body.get("code", "")).startswith(str(resp.status_code))


FAULTS: dict[str, Callable[[requests.Response], bool]] = {
    "identity": _keystone, "compute": _nova, "volume": _nova, "network": _neutron, "placement": _placement,
    "image": _plain, "metadata": _plain, "console": _plain, "object": _plain}


# --- the fuzzing run ------------------------------------------------------------------------------------


@dataclass
class Fuzzer:
    base: dict[str, str]
    tokens: dict[str, str]
    ids: dict[str, str]
    session: requests.Session = field(default_factory=requests.Session)
    sent: int = 0
    failures: list[str] = field(default_factory=list)

    def send(self, service: str, role: str, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> requests.Response | None:
        hdrs = {"X-Auth-Token": self.tokens[role], "Accept": "application/json",
                "Content-Type": "application/json", **(headers or {})}
        if method == "PATCH" and service == "image":
            hdrs["Content-Type"] = "application/openstack-images-v2.1-json-patch"
        self.sent += 1
        try:
            resp = self.session.request(method, self.base[service] + path, data=body, headers=hdrs, timeout=60)
        except requests.RequestException as exc:
            self.failures.append(f"{service} {role} {method} {path[:120]}: no answer ({exc})")
            return None
        what = f"{service} {role} {method} {path[:120]} body={(body or b'')[:120]!r}"
        if resp.status_code >= 500:
            self.failures.append(f"{what} -> {resp.status_code} {resp.text[:200]}")
        elif resp.status_code >= 400 and not FAULTS[service](resp):
            self.failures.append(f"{what} -> {resp.status_code} not in the API's fault format: {resp.text[:200]}")
        return resp

    def fill(self, template: str, choice: Callable[[list[str]], str]) -> str:
        """The path with each ``{param}`` replaced: a real id where there is one, or something odd."""
        segments = template.split("/")
        out = []
        for i, seg in enumerate(segments):
            m = re.fullmatch(r"\{(\w+)(?::.*)?\}", seg)
            if not m:
                out.append(seg)
                continue
            name = m.group(1)
            before = segments[i - 1] if i else ""
            real = (self.ids.get(f"{before}/{name}") or self.ids.get(name) or self.ids.get(before)
                    or str(uuid.uuid4()))
            out.append(choice([real, real, real, str(uuid.uuid4()), *PATH_VALUES]))
        return "/".join(out)


def templates(ids: dict[str, str]) -> dict[str, Any]:
    """Valid-looking bodies for the routes whose shape a generic guess would miss."""
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "fuzz-user", "domain": {"id": "default"}, "password": "fuzz-pass"}}},
        "scope": {"project": {"id": ids["project_id"]}}}}
    return {
        "POST /v3/auth/tokens": auth,
        "POST /v2.0/tokens": {"auth": {"passwordCredentials": {"username": "fuzz-user", "password": "fuzz-pass"},
                                       "tenantName": "fuzz"}},
        "PUT /v2.0/routers/{id}/add_router_interface": {"subnet_id": ids["subnets"]},
        "PUT /v2.0/routers/{id}/remove_router_interface": {"subnet_id": ids["subnets"]},
        "PUT /v2.0/quotas/{project_id}": {"quota": {"network": 10, "port": 50}},
        "POST /v2.0/ports": {"port": {"network_id": ids["networks"], "name": "p", "binding:host_id": "h",
                                      "fixed_ips": [{"subnet_id": ids["subnets"]}]}},
        "POST /v2.0/subnets": {"subnet": {"network_id": ids["networks"], "cidr": "10.9.0.0/24", "ip_version": 4}},
        "POST /v2.0/security-group-rules": {"security_group_rule": {
            "security_group_id": ids["security-groups"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22}},
        "POST /v2.0/floatingips": {"floatingip": {"floating_network_id": ids["networks"]}},
        "POST /v2.1/flavors": {"flavor": {"name": "f", "ram": 64, "vcpus": 1, "disk": 1}},
        "POST /v2.1/servers": {"server": {"name": "s", "imageRef": ids["images"], "flavorRef": "1",
                                          "networks": [{"uuid": ids["networks"]}]}},
        "PUT /v2.1/os-quota-sets/{project_id}": {"quota_set": {"instances": 10, "cores": 20}},
        "POST /v2.1/os-keypairs": {"keypair": {"name": "k"}},
        "POST /v2.1/os-aggregates": {"aggregate": {"name": "a", "availability_zone": "z"}},
        "POST /v2/images": {"name": "i", "disk_format": "raw", "container_format": "bare", "min_disk": 1},
        "PATCH /v2/images/{image_id}": [{"op": "replace", "path": "/name", "value": "x"},
                                        {"op": "add", "path": "/fuzz", "value": "y"}],
        "POST /v2/images/{image_id}/members": {"member": ids["project_id"]},
        "POST /v3/{project_id}/volumes": {"volume": {"size": 1, "name": "v"}},
        "POST /v3/{project_id}/snapshots": {"snapshot": {"volume_id": ids["volumes"], "name": "s"}},
        "POST /v3/{project_id}/backups": {"backup": {"volume_id": ids["volumes"], "name": "b"}},
        "POST /v3/{project_id}/backups/import_record": {"backup-record": {
            "backup_service": "tinystack.volume.drivers.backup_chunked", "backup_url": "eyJ2ZXJzaW9uIjogMX0="}},
        "PUT /v3/{project_id}/os-quota-sets/{tenant_id}": {"quota_set": {"volumes": 10, "gigabytes": 100}},
        "POST /resource_providers": {"name": "rp", "uuid": str(uuid.uuid4())},
        "PUT /resource_providers/{uuid}/inventories": {"resource_provider_generation": 0, "inventories": {
            "VCPU": {"total": 8}}},
        "POST /allocations": {str(uuid.uuid4()): {"allocations": {ids["uuid"]: {"resources": {"VCPU": 1}}},
                                                  "project_id": ids["project_id"], "user_id": ids["user_id"],
                                                  "consumer_generation": None}},
        "PUT /allocations/{consumer}": {"allocations": {ids["uuid"]: {"resources": {"VCPU": 1}}},
                                        "project_id": ids["project_id"], "user_id": ids["user_id"],
                                        "consumer_generation": None},
        "POST /v3/users": {"user": {"name": "u", "password": "p", "domain_id": "default"}},
        "POST /v3/users/{user_id}/application_credentials": {"application_credential": {"name": "ac"}},
        "POST /v3/credentials": {"credential": {"type": "ec2", "user_id": ids["user_id"], "project_id": ids["project_id"],
                                                "blob": json.dumps({"access": "a", "secret": "s"})}},
        "POST /v3/endpoints": {"endpoint": {"service_id": ids["services"], "interface": "public",
                                            "url": "http://x", "region_id": "RegionOne"}},
    }


def guess(template: str) -> Any:
    """A body for a route without a template: ``{"<singular>": {"name": ...}}`` after its last fixed segment."""
    fixed = [s for s in template.split("/") if s and not s.startswith("{")]
    return {_singular(fixed[-1]) if fixed else "item": {"name": "fuzz", "description": "fuzz"}}


def paths_in(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths_in(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from paths_in(value, (*prefix, i))


def mutate(doc: Any, where: tuple[Any, ...], key: str | None, value: Any) -> Any:
    """A copy of ``doc`` with the value at ``where`` replaced (or, with ``key``, that key of it set) to ``value``."""
    if not where:
        if key is not None and isinstance(doc, dict):
            return {**doc, key: value}
        return value
    copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[where[0]] = mutate(doc[where[0]], where[1:], key, value)
    return copy


hostile_values = st.one_of(st.sampled_from(HOSTILE), st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6))

whole_bodies = st.sampled_from([b"", b"null", b"[]", b'"x"', b"1", b"{", b"\xff\xfe", b'{"a": NaN}', b"Infinity",
                                b"[" * 300_000 + b"]" * 300_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                                b'"\\ud800"', b"9" * 5000, b'{"a": 1e999}'])


def leaves(doc: Any) -> list[tuple[Any, ...]]:
    """Where the scalar values of ``doc`` sit."""
    return [p for p in paths_in(doc) if p and not isinstance(_at(doc, p), dict | list)]


def _at(doc: Any, where: tuple[Any, ...]) -> Any:
    for step in where:
        doc = doc[step]
    return doc


def sweep(fz: Fuzzer, service: str, method: str, template: str, base_body: Any) -> None:
    """The known hostile classes, each put where it must be handled, before hypothesis explores at random:
    every leaf at once and each leaf alone (so an enum checked first cannot hide the field after it)."""
    path = fz.fill(template, lambda options: options[0])
    spots = leaves(base_body)[:10]
    bodies = [b"[" * 300_000 + b"]" * 300_000]
    for value in ("\ud800", 2**64, float("nan"), {"a": 1}):
        doc = base_body
        for where in spots:
            doc = mutate(doc, where, None, value)
        bodies.append(encode(doc))
    for where in spots:
        bodies += [encode(mutate(base_body, where, None, "\ud800")), encode(mutate(base_body, where, None, 2**64))]
    for body in bodies:
        fz.send(service, "admin", method, path, body)


def run_write(fz: Fuzzer, service: str, method: str, template: str, base_body: Any) -> None:
    @settings(max_examples=WRITE_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        path = fz.fill(template, lambda options: data.draw(st.sampled_from(options)))
        role = data.draw(st.sampled_from(["admin", "member"]))
        if data.draw(st.integers(0, 5)) == 0:
            body = data.draw(whole_bodies)
        else:
            where = data.draw(st.sampled_from(list(paths_in(base_body))))
            key = data.draw(st.none() | st.sampled_from(FIELDS))
            body = encode(mutate(base_body, where, key, data.draw(hostile_values)))
        fz.send(service, role, method, path, body)

    one()


def run_query(fz: Fuzzer, service: str, template: str) -> None:
    @settings(max_examples=QUERY_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        path = fz.fill(template, lambda options: data.draw(st.sampled_from(options)))
        role = data.draw(st.sampled_from(["admin", "member"]))
        pairs = data.draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.sampled_from(QUERY_VALUES)
                                             | st.text(max_size=10).map(lambda t: quote(t, safe="", errors="surrogatepass"))),
                                   min_size=1, max_size=4))
        fz.send(service, role, "GET", path + "?" + "&".join(f"{k}={v}" for k, v in pairs))

    one()


# --- the cloud and its resources -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    cloud = LiveCloud(Path(tmp_path_factory.mktemp("fuzz")))
    try:
        yield cloud
    finally:
        cloud.stop()


def _token(ks: str, auth: dict[str, Any]) -> str:
    resp = requests.post(f"{ks}/auth/tokens", json={"auth": auth}, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def setup_cloud(live: LiveCloud) -> Fuzzer:
    """A project, a member in it, and one resource of each cheap kind; their ids by URL segment or parameter name."""
    ks = live.url("identity")
    admin = live.conn("admin")
    project = admin.identity.create_project(name="fuzz", domain_id="default")
    user = admin.identity.create_user(name="fuzz-user", password="fuzz-pass", domain_id="default",
                                      default_project_id=project.id)
    member = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, member)
    base = {name: "{0.scheme}://{0.netloc}".format(urlsplit(url)) for name, url in live.cloud.urls.items()}
    admin_auth = {"identity": {"methods": ["token"], "token": {"id": admin.auth_token}}}
    tokens = {"admin": _token(ks, admin_auth),
              "member": _token(ks, {"identity": {"methods": ["password"], "password": {"user": {
                  "name": "fuzz-user", "domain": {"id": "default"}, "password": "fuzz-pass"}}},
                  "scope": {"project": {"id": project.id}}})}
    demo = live.conn(username="fuzz-user", password="fuzz-pass", project_id=project.id, user_domain_id="default")
    ids: dict[str, str] = {"project_id": project.id, "tenant_id": project.id, "user_id": user.id,
                           "projects": project.id, "users": user.id, "member_id": project.id,
                           "projects/actor_id": user.id, "users/actor_id": user.id, "groups/actor_id": user.id,
                           "key": "k1", "tag": "t1", "tail": "openstack/latest/meta_data.json", "rc": "VCPU",
                           "name": "CUSTOM_FUZZ"}
    net = demo.network.create_network(name="fuzz")
    subnet = demo.network.create_subnet(network_id=net.id, cidr="10.8.0.0/24", ip_version=4)
    router = demo.network.create_router(name="fuzz")
    sg = demo.network.create_security_group(name="fuzz")
    port = demo.network.create_port(network_id=net.id)
    ids.update({"networks": net.id, "subnets": subnet.id, "routers": router.id, "ports": port.id,
                "security-groups": sg.id, "security-group-rules": next(iter(sg.security_group_rules))["id"]})
    ids["agents"] = next(iter(admin.network.agents())).id
    image = demo.image.create_image(name="fuzz", disk_format="raw", container_format="bare")
    ids["images"] = ids["image_id"] = image.id
    volume = demo.block_storage.create_volume(size=1, name="fuzz")
    ids["volumes"] = ids["volume_id"] = volume.id
    demo.block_storage.wait_for_status(volume, "available", wait=60)
    snap = demo.block_storage.create_snapshot(volume_id=volume.id, name="fuzz")
    ids["snapshots"] = ids["snapshot_id"] = snap.id
    vtype = admin.block_storage.create_type(name="fuzz")
    ids["types"] = ids["type_id"] = vtype.id
    flavor = admin.compute.create_flavor(name="fuzz", ram=64, vcpus=1, disk=1)
    ids["flavors"] = ids["flavor_id"] = flavor.id
    agg = admin.compute.create_aggregate(name="fuzz")
    ids["os-aggregates"] = str(agg.id)
    rp = admin.placement.create_resource_provider(name="fuzz")
    ids["resource_providers"] = ids["uuid"] = rp.id
    domain = admin.identity.create_domain(name="fuzz")
    group = admin.identity.create_group(name="fuzz", domain_id="default")
    role = admin.identity.create_role(name="fuzz")
    role2 = admin.identity.create_role(name="fuzz2")
    region = admin.identity.create_region(id="fuzz")
    service = admin.identity.create_service(name="fuzz", type="fuzz")
    endpoint = admin.identity.create_endpoint(service_id=service.id, interface="public", url="http://fuzz")
    cred = admin.identity.create_credential(type="ec2", user_id=user.id, project_id=project.id,
                                            blob=json.dumps({"access": "a", "secret": "s"}))
    ids.update({"domains": domain.id, "domain_id": domain.id, "groups": group.id, "group_id": group.id,
                "roles": role.id, "role_id": role.id, "prior_id": role.id, "implied_id": role2.id,
                "regions": region.id, "region_id": region.id, "services": service.id, "service_id": service.id,
                "endpoints": endpoint.id, "endpoint_id": endpoint.id, "credentials": cred.id,
                "credential_id": cred.id})
    return Fuzzer(base, tokens, ids)


def test_no_input_causes_a_5xx(fuzz_cloud: LiveCloud) -> None:
    started = time.monotonic()
    fz = setup_cloud(fuzz_cloud)
    bodies = templates(fz.ids)
    for service, app in fuzz_cloud.cloud.apps.items():
        # aiohttp's own limits, answered before any handler: in the fault format all the same.
        fz.send(service, "admin", "GET", "/" + "a" * 9000)
        fz.send(service, "admin", "GET", "/", headers={"X-Fuzz": "a" * 9000})
        for route in app.router.routes():
            template = route.resource.canonical if route.resource is not None else "/"
            if route.method in ("POST", "PUT", "PATCH"):
                key = f"{route.method} {template}"
                body = bodies.get(key, bodies.get(key.replace("/v3/", "/v3/{project_id}/", 1), guess(template)))
                sweep(fz, service, route.method, template, body)
                run_write(fz, service, route.method, template, body)
            elif route.method == "GET":
                run_query(fz, service, template)
    elapsed = time.monotonic() - started
    print(f"fuzz: {fz.sent} requests in {elapsed:.1f}s, {len(fz.failures)} failures")
    assert not fz.failures, f"{len(fz.failures)} of {fz.sent} requests failed:\n" + "\n".join(fz.failures[:60])
