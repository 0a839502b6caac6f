"""OS-TRUST through the openstack CLI, openstacksdk and raw HTTP against a live cloud: the trust's life, trust-scoped
tokens (impersonation, uses, expiry, redelegation) and the refusals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


@dataclass(frozen=True)
class Member:
    """A user with the member role on a project of its own, and a project-scoped token."""

    cloud: str
    user_id: str
    project_id: str
    token: str


def _member(live: LiveCloud, prefix: str) -> Member:
    conn = live.project_conn(prefix)
    assert conn.current_user_id and conn.current_project_id and conn.auth_token
    return Member(conn.config.name, conn.current_user_id, conn.current_project_id, conn.auth_token)


def _call(live: LiveCloud, token: str, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
    return requests.request(method, live.url("identity") + path, json=body, params=params or None,
                            headers={"X-Auth-Token": token}, timeout=10)


def _trust_token(live: LiveCloud, who: Member, trust_id: str) -> requests.Response:
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": who.token}},
                     "scope": {"OS-TRUST:trust": {"id": trust_id}}}}
    return requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=10)


def _create(live: LiveCloud, trustor: Member, trustee: Member, **extra: Any) -> requests.Response:
    body = {"trust": {"trustor_user_id": trustor.user_id, "trustee_user_id": trustee.user_id,
                      "project_id": trustor.project_id, "roles": [{"name": "member"}], "impersonation": False,
                      **extra}}
    return _call(live, trustor.token, "POST", "/OS-TRUST/trusts", body)


@pytest.fixture(scope="module")
def trio(live: LiveCloud) -> tuple[Member, Member, Member]:
    return _member(live, "trustor"), _member(live, "trustee"), _member(live, "outsider")


def test_trust_cli_loop(live: LiveCloud, trio: tuple[Member, Member, Member]) -> None:
    trustor, trustee, _ = trio
    created = live.cli_json("trust", "create", "--project", trustor.project_id, "--role", "member",
                            "--impersonate", trustor.user_id, trustee.user_id, cloud=trustor.cloud)
    assert created["trustor_user_id"] == trustor.user_id and created["trustee_user_id"] == trustee.user_id
    assert created["is_impersonation"] is True and created["project_id"] == trustor.project_id
    listed = live.cli_json("trust", "list", "--trustor", trustor.user_id, cloud=trustor.cloud)
    assert [t["ID"] for t in listed] == [created["id"]]
    mine = live.cli_json("trust", "list", "--auth-user", cloud=trustee.cloud)
    assert created["id"] in [t["ID"] for t in mine]
    shown = live.cli_json("trust", "show", created["id"], cloud=trustee.cloud)
    assert shown["id"] == created["id"] and "member" in str(shown["roles"])
    live.cli("trust", "delete", created["id"], cloud=trustor.cloud)
    assert live.cli("trust", "show", created["id"], cloud=trustor.cloud, check=False).returncode != 0


def test_trust_roles_listing(live: LiveCloud, trio: tuple[Member, Member, Member]) -> None:
    trustor, trustee, outsider = trio
    trust = _create(live, trustor, trustee).json()["trust"]
    role_id = trust["roles"][0]["id"]
    roles = _call(live, trustee.token, "GET", f"/OS-TRUST/trusts/{trust['id']}/roles").json()["roles"]
    assert [r["name"] for r in roles] == ["member"]
    assert _call(live, trustee.token, "GET", f"/OS-TRUST/trusts/{trust['id']}/roles/{role_id}").status_code == 200
    assert _call(live, trustee.token, "HEAD", f"/OS-TRUST/trusts/{trust['id']}/roles/{role_id}").status_code == 200
    assert _call(live, trustee.token, "GET", f"/OS-TRUST/trusts/{trust['id']}/roles/nope").status_code == 404
    assert _call(live, outsider.token, "GET", f"/OS-TRUST/trusts/{trust['id']}/roles").status_code == 403
    _call(live, trustor.token, "DELETE", f"/OS-TRUST/trusts/{trust['id']}")


def test_trust_scoped_token_with_impersonation_and_uses(live: LiveCloud, trio: tuple[Member, Member, Member]) -> None:
    trustor, trustee, _ = trio
    created = _create(live, trustor, trustee, impersonation=True, remaining_uses=2)
    assert created.status_code == 201, created.text
    trust = created.json()["trust"]
    assert trust["remaining_uses"] == 2 and trust["allow_redelegation"] is False
    issued = _trust_token(live, trustee, trust["id"])
    assert issued.status_code == 201, issued.text
    body = issued.json()["token"]
    assert body["user"]["id"] == trustor.user_id  # impersonation: the token is the trustor's
    assert body["project"]["id"] == trustor.project_id
    assert body["OS-TRUST:trust"] == {"id": trust["id"], "impersonation": True,
                                      "trustor_user": {"id": trustor.user_id}, "trustee_user": {"id": trustee.user_id}}
    assert "member" in [r["name"] for r in body["roles"]]
    token = issued.headers["X-Subject-Token"]
    # The token works on other services, in the trustor's project.
    servers = requests.get(live.url("compute") + "/servers", headers={"X-Auth-Token": token}, timeout=10)
    assert servers.status_code == 200, servers.text
    assert _call(live, trustor.token, "GET", f"/OS-TRUST/trusts/{trust['id']}").json()["trust"]["remaining_uses"] == 1
    assert _trust_token(live, trustee, trust["id"]).status_code == 201
    spent = _trust_token(live, trustee, trust["id"])
    assert spent.status_code == 403 and spent.json()["error"]["code"] == 403
    # A trust-scoped token cannot be rescoped, nor create a trust when redelegation is off (the default).
    rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                        "scope": {"project": {"id": trustor.project_id}}}}
    assert requests.post(live.url("identity") + "/auth/tokens", json=rescope, timeout=10).status_code == 403
    sub = {"trust": {"trustor_user_id": trustor.user_id, "trustee_user_id": trustee.user_id,
                     "project_id": trustor.project_id, "roles": [{"name": "member"}], "impersonation": False}}
    assert _call(live, token, "POST", "/OS-TRUST/trusts", sub).status_code == 403
    # Deleting the trust ends its tokens.
    assert _call(live, trustor.token, "DELETE", f"/OS-TRUST/trusts/{trust['id']}").status_code == 204
    assert requests.get(live.url("compute") + "/servers", headers={"X-Auth-Token": token}, timeout=10).status_code == 401


def test_trust_without_impersonation_and_expiry(live: LiveCloud, trio: tuple[Member, Member, Member]) -> None:
    trustor, trustee, _ = trio
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    trust = _create(live, trustor, trustee, expires_at=expires).json()["trust"]
    assert trust["expires_at"] == expires and trust["remaining_uses"] is None
    issued = _trust_token(live, trustee, trust["id"])
    assert issued.status_code == 201, issued.text
    body = issued.json()["token"]
    assert body["user"]["id"] == trustee.user_id and body["project"]["id"] == trustor.project_id
    assert body["expires_at"] <= expires
    _call(live, trustor.token, "DELETE", f"/OS-TRUST/trusts/{trust['id']}")


def test_trust_redelegation(live: LiveCloud, trio: tuple[Member, Member, Member]) -> None:
    trustor, trustee, outsider = trio
    trust = _create(live, trustor, trustee, allow_redelegation=True, redelegation_count=1).json()["trust"]
    assert trust["allow_redelegation"] is True and trust["redelegation_count"] == 1
    token = _trust_token(live, trustee, trust["id"]).headers["X-Subject-Token"]
    sub = {"trust": {"trustor_user_id": trustee.user_id, "trustee_user_id": outsider.user_id,
                     "project_id": trustor.project_id, "roles": [{"name": "member"}], "impersonation": False,
                     "allow_redelegation": True}}
    made = _call(live, token, "POST", "/OS-TRUST/trusts", sub)
    assert made.status_code == 201, made.text
    child = made.json()["trust"]
    assert child["redelegated_trust_id"] == trust["id"] and child["allow_redelegation"] is False
    outsider_token = _trust_token(live, outsider, child["id"])
    assert outsider_token.status_code == 201, outsider_token.text
    assert outsider_token.json()["token"]["project"]["id"] == trustor.project_id
    # The redelegated trust cannot go further: its count is spent.
    again = {"trust": {**sub["trust"], "trustor_user_id": outsider.user_id, "trustee_user_id": trustee.user_id}}
    assert _call(live, outsider_token.headers["X-Subject-Token"], "POST", "/OS-TRUST/trusts", again).status_code == 403
    # Deleting the first trust takes the redelegated one, and its tokens, with it.
    _call(live, trustor.token, "DELETE", f"/OS-TRUST/trusts/{trust['id']}")
    mine = _call(live, outsider.token, "GET", "/OS-TRUST/trusts", trustee_user_id=outsider.user_id).json()["trusts"]
    assert child["id"] not in [t["id"] for t in mine]
    gone = requests.get(live.url("compute") + "/servers", timeout=10,
                        headers={"X-Auth-Token": outsider_token.headers["X-Subject-Token"]})
    assert gone.status_code == 401


def test_trust_refusals(live: LiveCloud, trio: tuple[Member, Member, Member]) -> None:
    trustor, trustee, outsider = trio
    trust = _create(live, trustor, trustee).json()["trust"]
    path = f"/OS-TRUST/trusts/{trust['id']}"
    # Another user's trust: not readable, not deletable, not usable.
    assert _call(live, outsider.token, "GET", path).status_code == 403
    assert _call(live, outsider.token, "DELETE", path).status_code == 403
    assert _call(live, trustee.token, "DELETE", path).status_code == 403
    assert _trust_token(live, outsider, trust["id"]).status_code == 403
    # Listing everyone's trusts is the admin's; a filter on another user is refused.
    assert _call(live, trustor.token, "GET", "/OS-TRUST/trusts").status_code == 403
    assert _call(live, outsider.token, "GET", "/OS-TRUST/trusts", trustor_user_id=trustor.user_id).status_code == 403
    # Nobody makes a trust in another's name, nor delegates a role it does not hold.
    assert _create(live, trustor, trustee, trustor_user_id=outsider.user_id).status_code == 403
    assert _create(live, trustor, trustee, roles=[{"name": "admin"}]).status_code == 403
    assert _create(live, trustor, trustee, project_id=outsider.project_id).status_code == 403
    # Bad input: 400 in Keystone's format, nothing made.
    before = len(_call(live, trustor.token, "GET", "/OS-TRUST/trusts", trustor_user_id=trustor.user_id).json()["trusts"])
    for bad in ({"impersonation": "yes"}, {"roles": []}, {"remaining_uses": 0}, {"expires_at": "soon"},
                {"expires_at": "2000-01-01T00:00:00Z"}):
        answer = _create(live, trustor, trustee, **bad)
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error"]["code"] == 400
    missing = _call(live, trustor.token, "POST", "/OS-TRUST/trusts", {"trust": {"trustor_user_id": trustor.user_id}})
    assert missing.status_code == 400
    after = _call(live, trustor.token, "GET", "/OS-TRUST/trusts", trustor_user_id=trustor.user_id).json()["trusts"]
    assert len(after) == before
    assert _create(live, trustor, trustee, trustee_user_id="nobody").status_code == 404
    assert _call(live, trustor.token, "GET", "/OS-TRUST/trusts/nope").status_code in (403, 404)
    _call(live, trustor.token, "DELETE", path)
