"""Domain-specific configuration through raw HTTP against a live cloud (openstackclient has no command for it):
whole, by group and by option, the defaults, the hidden ldap password, and the refusals."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def _call(live: LiveCloud, token: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, live.url("identity") + path, json=body, headers={"X-Auth-Token": token},
                            timeout=10)


def test_domain_config_loop(live: LiveCloud) -> None:
    admin = str(live.conn("admin").auth_token)
    domain = live.conn("admin").identity.create_domain(name=f"cfg-{secrets.token_hex(4)}").id
    path = f"/domains/{domain}/config"
    assert _call(live, admin, "GET", path).status_code == 404
    config = {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://ldap.example", "user_tree_dn": "ou=Users",
                                                       "password": "hidden"}}
    made = _call(live, admin, "PUT", path, {"config": config})
    assert made.status_code == 201, made.text
    assert made.json()["config"] == {"identity": {"driver": "ldap"},
                                     "ldap": {"url": "ldap://ldap.example", "user_tree_dn": "ou=Users"}}
    assert _call(live, admin, "PUT", path, {"config": config}).status_code == 200
    assert _call(live, admin, "GET", path + "/ldap").json() == {
        "config": {"ldap": {"url": "ldap://ldap.example", "user_tree_dn": "ou=Users"}}}
    assert _call(live, admin, "GET", path + "/ldap/url").json() == {"config": {"url": "ldap://ldap.example"}}
    assert _call(live, admin, "GET", path + "/ldap/password").status_code == 404
    patched = _call(live, admin, "PATCH", path + "/ldap/url", {"config": {"url": "ldaps://ldap.example"}})
    assert patched.status_code == 200 and patched.json()["config"]["ldap"]["url"] == "ldaps://ldap.example"
    patched = _call(live, admin, "PATCH", path, {"config": {"ldap": {"user_filter": "(x=y)"}}})
    assert patched.json()["config"]["ldap"]["user_filter"] == "(x=y)"
    assert _call(live, admin, "DELETE", path + "/ldap/user_filter").status_code == 204
    assert "user_filter" not in _call(live, admin, "GET", path).json()["config"]["ldap"]
    assert _call(live, admin, "GET", "/domains/config/default").json()["config"]["identity"]["driver"] == "sql"
    assert _call(live, admin, "GET", "/domains/config/ldap/url/default").json() == {"config": {"url": "ldap://localhost"}}
    assert _call(live, admin, "DELETE", path).status_code == 204
    assert _call(live, admin, "GET", path).status_code == 404


def test_domain_config_refusals(live: LiveCloud) -> None:
    admin = str(live.conn("admin").auth_token)
    member = str(live.project_conn("cfg").auth_token)
    path = "/domains/default/config"
    good = {"config": {"identity": {"driver": "sql"}}}
    assert _call(live, member, "PUT", path, good).status_code == 403
    assert _call(live, member, "GET", path).status_code == 403
    assert _call(live, member, "GET", "/domains/config/default").status_code == 403
    # Keystone's refusals: an unsupported group or option is a 403, a malformed body a 400.
    assert _call(live, admin, "PUT", path, {"config": {"database": {"connection": "x"}}}).status_code == 403
    assert _call(live, admin, "PUT", path, {"config": {"ldap": {"no_such_option": 1}}}).status_code == 403
    for bad in ({}, {"config": {}}, {"config": {"ldap": "url"}}, {"config": {"ldap": {}}}):
        answer = _call(live, admin, "PUT", path, bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 400, (bad, answer.text)
    assert _call(live, admin, "PUT", "/domains/nope/config", good).status_code == 404
    assert _call(live, admin, "PATCH", "/domains/default/config/ldap", {"config": {"ldap": {"url": "x"}}}).status_code == 404
    # Anyone reads the cloud's password rules through the security_compliance group.
    rules = _call(live, member, "GET", "/domains/default/config/security_compliance")
    assert rules.status_code == 200 and set(rules.json()["config"]["security_compliance"]) == {
        "password_regex", "password_regex_description"}
    assert _call(live, member, "GET", "/domains/default/config/security_compliance/lockout_duration").status_code == 403
    assert _call(live, admin, "PATCH", "/domains/default/config/security_compliance",
                 {"config": {"security_compliance": {"password_regex": "x"}}}).status_code == 403
