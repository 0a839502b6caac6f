"""Application credentials, credentials and OS-EC2 through the openstack CLI, openstacksdk and raw HTTP
against a live cloud, including the refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, cast

import openstack
import pytest
import requests
from openstack.identity.v3._proxy import Proxy as IdentityV3

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


class Caller:
    """Raw Keystone calls with one token, for the status codes and bodies the clients hide."""

    def __init__(self, live: LiveCloud, token: str) -> None:
        self.base = live.url("identity")
        self.token = token

    def __call__(self, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
        return requests.request(method, self.base + path, json=body, params=params or None,
                                headers={"X-Auth-Token": self.token}, timeout=10)


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _app_cred_token(live: LiveCloud, cred_id: str, secret: str) -> requests.Response:
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred_id, "secret": secret}}}}
    return requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=10)


@dataclass(frozen=True)
class Who:
    """A signed-in user of clouds.yaml: its openstacksdk connection and the ids tests need."""

    conn: openstack.connection.Connection
    user_id: str
    project_id: str
    token: str

    @property
    def identity(self) -> IdentityV3:
        return cast(IdentityV3, self.conn.identity)


def _who(live: LiveCloud, cloud: str) -> Who:
    conn = live.conn(cloud)
    user_id, project_id, token = conn.current_user_id, conn.current_project_id, conn.auth_token
    assert user_id and project_id and token
    return Who(conn, user_id, project_id, token)


@pytest.fixture(scope="module")
def demo(live: LiveCloud) -> Who:
    return _who(live, "demo")


@pytest.fixture(scope="module")
def admin(live: LiveCloud) -> Who:
    return _who(live, "admin")


# --- application credentials ---------------------------------------------------------------------


def test_app_cred_full_loop(live: LiveCloud, demo: Who,
                            admin: Who) -> None:
    name = _unique("loop")
    created = live.cli_json("application", "credential", "create", "--role", "reader", "--description", "ci",
                            name, cloud="demo")
    secret = created["Secret"]
    assert created["Project ID"] == demo.project_id
    assert [r["name"] for r in created["Roles"]] == ["reader"]
    assert created["Unrestricted"] is False

    r = _app_cred_token(live, created["ID"], secret)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["project"]["id"] == demo.project_id
    assert [role["name"] for role in token["roles"]] == ["reader"]
    assert token["methods"] == ["application_credential"]
    assert token["application_credential"] == {"id": created["ID"], "name": name, "restricted": True}
    subject = r.headers["X-Subject-Token"]

    # The same loop through openstacksdk's v3applicationcredential plugin.
    conn = openstack.connect(auth_url=live.url("identity"), region_name="RegionOne",
                             auth_type="v3applicationcredential",
                             auth={"application_credential_id": created["ID"], "application_credential_secret": secret})
    assert conn.current_project_id == demo.project_id
    assert _app_cred_token(live, created["ID"], "wrong-secret").status_code == 401

    live.cli("application", "credential", "delete", name, cloud="demo")
    check = requests.get(live.url("identity") + "/auth/tokens", timeout=10,
                         headers={"X-Auth-Token": admin.token, "X-Subject-Token": subject})
    assert check.status_code == 404
    assert Caller(live, subject)("GET", "/auth/catalog").status_code == 401
    assert _app_cred_token(live, created["ID"], secret).status_code == 401


def test_app_cred_list_show_and_filter(live: LiveCloud, demo: Who) -> None:
    first, second = _unique("one"), _unique("two")
    for name in (first, second):
        live.cli("application", "credential", "create", name, cloud="demo")
    listed = {c["Name"] for c in live.cli_json("application", "credential", "list", cloud="demo")}
    assert {first, second} <= listed

    shown = live.cli_json("application", "credential", "show", first, cloud="demo")
    assert shown["Name"] == first and "Secret" not in shown
    # No roles asked for: the credential carries every role of the token, implied ones included.
    assert {r["name"] for r in shown["Roles"]} >= {"member", "reader"}

    api = Caller(live, demo.token)
    path = f"/users/{demo.user_id}/application_credentials"
    r = api("GET", path, name=second)
    assert r.status_code == 200
    assert [c["name"] for c in r.json()["application_credentials"]] == [second]
    assert all("secret" not in c for c in api("GET", path).json()["application_credentials"])
    assert api("HEAD", path).status_code == 200
    for name in (first, second):
        live.cli("application", "credential", "delete", name, cloud="demo")


def test_app_cred_secret_and_expiry(live: LiveCloud, demo: Who) -> None:
    api = Caller(live, demo.token)
    path = f"/users/{demo.user_id}/application_credentials"
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).replace(tzinfo=None)
    r = api("POST", path, {"application_credential": {"name": _unique("exp"), "secret": "my-own-secret",
                                                       "expires_at": expires.isoformat()}})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    assert cred["secret"] == "my-own-secret"
    assert cred["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.%f")
    token = _app_cred_token(live, cred["id"], "my-own-secret").json()["token"]
    assert token["expires_at"] <= expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert api("DELETE", f"{path}/{cred['id']}").status_code == 204
    assert api("DELETE", f"{path}/{cred['id']}").status_code == 404

    generated = api("POST", path, {"application_credential": {"name": _unique("gen")}}).json()["application_credential"]
    assert len(generated["secret"]) == 86
    api("DELETE", f"{path}/{generated['id']}")


def test_app_cred_refusals(live: LiveCloud, demo: Who,
                           admin: Who) -> None:
    api = Caller(live, demo.token)
    path = f"/users/{demo.user_id}/application_credentials"
    name = _unique("dup")
    assert api("POST", path, {"application_credential": {"name": name}}).status_code == 201
    before = api("GET", path).json()["application_credentials"]

    def create(**fields: Any) -> requests.Response:
        return api("POST", path, {"application_credential": {"name": _unique("bad"), **fields}})

    r = api("POST", path, {"application_credential": {"name": name}})
    assert r.status_code == 409 and r.json()["error"]["code"] == 409
    assert create(roles=[{"name": "admin"}]).status_code == 400       # a role demo does not hold
    assert create(roles=[{"id": "0" * 32}]).status_code == 400
    assert create(roles=[{"name": "no-such-role"}]).status_code == 404
    assert create(roles=[{"id": "x", "name": "y"}]).status_code == 400
    assert create(expires_at="2001-01-01T00:00:00").status_code == 400
    assert create(expires_at="tomorrow").status_code == 400
    assert create(unrestricted="yes").status_code == 400
    assert create(colour="blue").status_code == 400
    assert create(access_rules=[{"path": "v2.1/servers", "method": "GET", "service": "compute"}]).status_code == 400
    assert create(access_rules=[{"path": "/v2.1/servers", "method": "FETCH", "service": "compute"}]).status_code == 400
    assert create(access_rules=[{"path": "/v2.1/servers"}]).status_code == 400
    assert api("POST", path, {"application_credential": {"name": "   "}}).status_code == 400
    assert api("POST", path, {"application_credential": {}}).status_code == 400
    assert api("POST", path, ["not", "an", "object"]).status_code == 400
    assert api("GET", path).json()["application_credentials"] == before

    # Other users' credentials: creating, listing or reading them is refused; an admin may not create either.
    other = f"/users/{admin.user_id}/application_credentials"
    assert api("POST", other, {"application_credential": {"name": "x"}}).status_code == 403
    assert api("GET", other).status_code == 403
    assert Caller(live, admin.token)("POST", path, {"application_credential": {"name": "x"}}).status_code == 403
    assert api("GET", f"{path}/{'f' * 32}").status_code == 404

    mine = api("GET", path, name=name).json()["application_credentials"][0]
    admin_api = Caller(live, admin.token)
    assert admin_api("GET", f"{path}/{mine['id']}").status_code == 200
    assert admin_api("GET", f"{other}/{mine['id']}").status_code == 404   # the path's user must own it
    assert api("DELETE", f"{path}/{mine['id']}").status_code == 204


def test_restricted_app_cred_token_cannot_manage_credentials(live: LiveCloud,
                                                             demo: Who) -> None:
    api = Caller(live, demo.token)
    path = f"/users/{demo.user_id}/application_credentials"
    restricted = api("POST", path, {"application_credential": {"name": _unique("r")}}).json()["application_credential"]
    free = api("POST", path, {"application_credential": {"name": _unique("u"), "unrestricted": True}}).json()[
        "application_credential"]
    r_token = _app_cred_token(live, restricted["id"], restricted["secret"]).headers["X-Subject-Token"]
    u_token = _app_cred_token(live, free["id"], free["secret"]).headers["X-Subject-Token"]

    r = Caller(live, r_token)("POST", path, {"application_credential": {"name": _unique("child")}})
    assert r.status_code == 403 and "application_credential" in r.json()["error"]["message"]
    assert Caller(live, r_token)("DELETE", f"{path}/{free['id']}").status_code == 403
    assert Caller(live, r_token)("POST", f"/users/{demo.user_id}/credentials/OS-EC2",
                                 {"tenant_id": demo.project_id}).status_code == 403

    child = Caller(live, u_token)("POST", path, {"application_credential": {"name": _unique("child")}})
    assert child.status_code == 201, child.text
    assert child.json()["application_credential"]["project_id"] == demo.project_id
    for cred in (restricted, free, child.json()["application_credential"]):
        assert api("DELETE", f"{path}/{cred['id']}").status_code == 204


def test_app_cred_needs_a_project_scoped_token(live: LiveCloud, demo: Who) -> None:
    password = demo.conn.config.auth["password"]
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": demo.user_id, "password": password}}}, "scope": "unscoped"}}
    unscoped = requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=10).headers["X-Subject-Token"]
    r = Caller(live, unscoped)("POST", f"/users/{demo.user_id}/application_credentials",
                               {"application_credential": {"name": _unique("u")}})
    assert r.status_code == 403


# --- credentials ---------------------------------------------------------------------------------


def _ec2_blob(access: str | None = None) -> str:
    return json.dumps({"access": access or secrets.token_hex(16), "secret": secrets.token_hex(16)})


def test_credential_crud_cli(live: LiveCloud, demo: Who) -> None:
    user, project = demo.user_id, demo.project_id
    blob = _ec2_blob()
    created = live.cli_json("credential", "create", "--type", "ec2", "--project", project, user, blob, cloud="demo")
    assert created["id"] == hashlib.sha256(json.loads(blob)["access"].encode()).hexdigest()
    assert created["user_id"] == user and created["project_id"] == project

    listed = live.cli_json("credential", "list", cloud="demo")
    assert created["id"] in {c["ID"] for c in listed}
    new_blob = _ec2_blob()
    live.cli("credential", "set", "--user", user, "--type", "ec2", "--data", new_blob, "--project", project,
             created["id"], cloud="demo")
    shown = live.cli_json("credential", "show", created["id"], cloud="demo")
    assert json.loads(shown["blob"]) == json.loads(new_blob)
    live.cli("credential", "delete", created["id"], cloud="demo")
    assert live.cli("credential", "show", created["id"], cloud="demo", check=False).returncode != 0


def test_credential_ownership(live: LiveCloud, demo: Who,
                              admin: Who) -> None:
    admin_cred = admin.identity.create_credential(user_id=admin.user_id, type="cert", blob="admin-secret")
    demo_cred = demo.identity.create_credential(user_id=demo.user_id, type="cert", blob="demo-secret")
    assert len(demo_cred.id) == 32
    api = Caller(live, demo.token)

    seen = {c["id"] for c in api("GET", "/credentials").json()["credentials"]}
    assert demo_cred.id in seen and admin_cred.id not in seen
    assert {c["user_id"] for c in api("GET", "/credentials").json()["credentials"]} == {demo.user_id}
    everything = {c["id"] for c in Caller(live, admin.token)("GET", "/credentials").json()["credentials"]}
    assert {demo_cred.id, admin_cred.id} <= everything
    filtered = Caller(live, admin.token)("GET", "/credentials", user_id=demo.user_id, type="cert")
    assert {c["user_id"] for c in filtered.json()["credentials"]} == {demo.user_id}

    assert api("GET", f"/credentials/{admin_cred.id}").status_code == 403
    assert api("PATCH", f"/credentials/{admin_cred.id}", {"credential": {"blob": "x"}}).status_code == 403
    assert api("DELETE", f"/credentials/{admin_cred.id}").status_code == 403
    assert api("POST", "/credentials", {"credential": {"user_id": admin.user_id, "type": "cert",
                                                       "blob": "x"}}).status_code == 403
    # Handing one's own credential to another user is refused, and changes nothing.
    r = api("PATCH", f"/credentials/{demo_cred.id}", {"credential": {"user_id": admin.user_id}})
    assert r.status_code == 403
    assert api("GET", f"/credentials/{demo_cred.id}").json()["credential"]["user_id"] == demo.user_id

    r = api("PATCH", f"/credentials/{demo_cred.id}", {"credential": {"blob": "rotated", "note": "kept"}})
    assert r.status_code == 200 and r.json()["credential"]["blob"] == "rotated"
    assert r.json()["credential"]["note"] == "kept"
    admin.identity.delete_credential(admin_cred.id)
    demo.identity.delete_credential(demo_cred.id)


def test_credential_bad_input(live: LiveCloud, demo: Who, admin: Who) -> None:
    api = Caller(live, demo.token)
    user, project = demo.user_id, demo.project_id

    def create(**fields: Any) -> requests.Response:
        return api("POST", "/credentials", {"credential": {"user_id": user, "type": "ec2", "project_id": project,
                                                           "blob": _ec2_blob(), **fields}})

    before = api("GET", "/credentials").json()["credentials"]
    assert create(project_id=None).status_code == 400
    r = api("POST", "/credentials", {"credential": {"user_id": user, "type": "ec2", "blob": _ec2_blob()}})
    assert r.status_code == 400
    assert create(blob="{not json").status_code == 400
    assert create(blob=json.dumps({"secret": "s"})).status_code == 400
    assert create(blob=json.dumps(["access"])).status_code == 400
    assert create(blob={"access": "a"}).status_code == 400
    assert create(type=7).status_code == 400
    assert create(project_id="no-such-project").status_code == 400
    assert api("POST", "/credentials", {"credential": {"type": "cert", "blob": "x"}}).status_code == 400
    assert api("GET", "/credentials").json()["credentials"] == before

    blob = _ec2_blob()
    first = create(blob=blob)
    assert first.status_code == 201
    assert create(blob=blob).status_code == 409
    cred_id = first.json()["credential"]["id"]
    assert api("PATCH", f"/credentials/{cred_id}", {"credential": {"id": "other"}}).status_code == 400
    assert api("PATCH", f"/credentials/{cred_id}", {"credential": {}}).status_code == 400
    assert api("PATCH", f"/credentials/{cred_id}", {"credential": {"blob": "{}"}}).status_code == 400
    bound = json.dumps({**json.loads(blob), "trust_id": "t"})
    assert api("PATCH", f"/credentials/{cred_id}", {"credential": {"blob": bound}}).status_code == 400
    assert api("GET", f"/credentials/{cred_id}").json()["credential"]["blob"] == blob
    assert api("DELETE", f"/credentials/{cred_id}").status_code == 204
    assert api("GET", f"/credentials/{cred_id}").status_code == 403    # no owner to check against
    assert Caller(live, admin.token)("GET", f"/credentials/{cred_id}").status_code == 404


# --- OS-EC2 --------------------------------------------------------------------------------------


def test_ec2_credentials_cli(live: LiveCloud, demo: Who) -> None:
    created = live.cli_json("ec2", "credentials", "create", cloud="demo")
    access = created["access"]
    assert created["project_id"] == demo.project_id
    assert created["user_id"] == demo.user_id
    assert created["secret"] and created["trust_id"] is None

    listed = live.cli_json("ec2", "credentials", "list", cloud="demo")
    assert access in {c["Access"] for c in listed}
    shown = live.cli_json("ec2", "credentials", "show", access, cloud="demo")
    assert shown["secret"] == created["secret"]

    # The same key is an ordinary ec2 credential under /v3/credentials, with the hashed id.
    api = Caller(live, demo.token)
    cred = api("GET", f"/credentials/{hashlib.sha256(access.encode()).hexdigest()}").json()["credential"]
    assert cred["type"] == "ec2" and json.loads(cred["blob"])["access"] == access

    live.cli("ec2", "credentials", "delete", access, cloud="demo")
    assert api("GET", f"/users/{demo.user_id}/credentials/OS-EC2/{access}").status_code == 404


def test_ec2_raw_and_refusals(live: LiveCloud, demo: Who,
                              admin: Who) -> None:
    api = Caller(live, demo.token)
    mine = f"/users/{demo.user_id}/credentials/OS-EC2"
    r = api("POST", mine, {"tenant_id": demo.project_id})
    assert r.status_code == 201
    cred = r.json()["credential"]
    assert set(cred) == {"user_id", "tenant_id", "access", "secret", "trust_id", "links"}
    assert cred["links"]["self"].endswith(f"{mine}/{cred['access']}")
    assert [c for c in api("GET", mine).json()["credentials"] if c["access"] == cred["access"]] == [cred]

    assert api("POST", mine, {"tenant_id": "no-such-project"}).status_code == 404
    assert api("POST", mine, {}).status_code == 400
    assert api("POST", mine, {"tenant_id": 5}).status_code == 400
    theirs = f"/users/{admin.user_id}/credentials/OS-EC2"
    assert api("POST", theirs, {"tenant_id": demo.project_id}).status_code == 403
    assert api("GET", theirs).status_code == 403
    assert api("GET", f"{theirs}/{cred['access']}").status_code == 403
    assert api("GET", f"{mine}/not-a-key").status_code == 404
    admin_api = Caller(live, admin.token)
    assert admin_api("GET", f"/users/{'0' * 32}/credentials/OS-EC2").status_code == 404
    assert admin_api("GET", f"{theirs}/{cred['access']}").status_code == 404    # not admin's key
    assert admin_api("GET", f"{mine}/{cred['access']}").status_code == 200
    assert api("DELETE", f"{mine}/{cred['access']}").status_code == 204
    assert api("DELETE", f"{mine}/{cred['access']}").status_code == 404
