"""Domains, projects, users and groups: a few rules on a scratch database, then the real openstack CLI,
openstacksdk and raw HTTP against a live cloud, bad input included."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from openstack.identity.v3._proxy import Proxy as IdentityV3
from sqlalchemy import func, select

from tests.livecloud import LiveCloud
from tinystack.core import errors
from tinystack.core.db import Base, Database
from tinystack.identity import resources, users
from tinystack.identity.models import TABLES, Assignment, Domain, Membership, Project, Role, User
from tinystack.identity.tokens import TokenService

pytestmark = pytest.mark.api


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


# --- the rules on a scratch database -------------------------------------------------------------


class FakeTokens:
    def __init__(self) -> None:
        self.revoked: list[dict[str, Any]] = []

    def revoke(self, _s: Any, **what: Any) -> None:
        self.revoked.append(what)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'identity.db'}")
    Base.metadata.create_all(database.engine, tables=TABLES)  # type: ignore[arg-type]
    with database.session() as s:
        s.add(Domain(id="default", name="Default"))
    yield database
    database.dispose()


def test_hierarchy_depth_and_disabled_branches(db: Database) -> None:
    tokens = cast(TokenService, FakeTokens())
    with db.session() as s:
        parent = "default"
        for depth in range(resources.MAX_PROJECT_DEPTH):
            parent = resources.create_project(s, {"name": f"p{depth}", "parent_id": parent}, "default").id
        with pytest.raises(errors.Forbidden, match="Max hierarchy depth"):
            resources.create_project(s, {"name": "too-deep", "parent_id": parent}, "default")
        top = resources.list_projects(s, parent_id="default")
        assert [p.name for p in top] == ["p0"]
        with pytest.raises(errors.Forbidden, match="subtree contains enabled"):
            resources.update_project(s, tokens, top[0].id, {"enabled": False})
        leaf = resources.update_project(s, tokens, parent, {"enabled": False})
        with pytest.raises(errors.BadRequest, match="disabled project"):
            resources.create_project(s, {"name": "under-disabled", "parent_id": leaf.id}, "default")
    assert cast(FakeTokens, tokens).revoked == [{"project_id": parent}]


def test_tag_filters() -> None:
    assert resources.tags_match(["a", "b"], {"tags": ["a", "b"], "tags-any": ["b", "z"]})
    assert not resources.tags_match(["a"], {"tags": ["a", "b"]})
    assert not resources.tags_match(["a", "b"], {"not-tags": ["a", "b"]})
    assert resources.tags_match(["a"], {"not-tags": ["a", "b"]})
    assert not resources.tags_match(["a"], {"not-tags-any": ["a", "z"]})


def test_domain_delete_takes_its_contents(db: Database) -> None:
    tokens = cast(TokenService, FakeTokens())
    with db.session() as s:
        d = resources.create_domain(s, {"name": "d"})
        p = resources.create_project(s, {"name": "p"}, d.id)
        resources.create_project(s, {"name": "c", "parent_id": p.id}, d.id)
        u = users.create_user(s, {"name": "u"}, d.id, None)
        g = users.create_group(s, {"name": "g"}, d.id)
        users.add_member(s, g.id, u.id)
        s.add(Role(id="r", name="r", domain_id=d.id))
        s.flush()
        s.add(Assignment(type="UserProject", actor_id=u.id, target_id=p.id, role_id="r"))
        with pytest.raises(errors.Forbidden, match="please disable it first"):
            resources.delete_domain(s, d.id)
        resources.update_domain(s, tokens, d.id, {"enabled": False})
        resources.delete_domain(s, d.id)
        assert s.get(Domain, d.id) is None
        for model in (Project, User, Membership, Role, Assignment):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model
    assert cast(FakeTokens, tokens).revoked == [{"domain_id": d.id}]


# --- the live cloud ------------------------------------------------------------------------------


def _identity(live: LiveCloud, cloud: str = "admin") -> IdentityV3:
    return cast(IdentityV3, live.conn(cloud).identity)


def _call(live: LiveCloud, method: str, path: str, token: str, **kw: Any) -> requests.Response:
    return requests.request(method, live.url("identity") + path, headers={"X-Auth-Token": token}, timeout=10, **kw)


def _token(live: LiveCloud, user: str, password: str, domain: str = "default", project: str | None = None) -> str:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": domain}, "password": password}}}}
    auth["scope"] = {"project": {"id": project}} if project else "unscoped"
    r = requests.post(live.url("identity") + "/auth/tokens", json={"auth": auth}, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def _valid(live: LiveCloud, admin: str, token: str) -> int:
    r = requests.get(live.url("identity") + "/auth/tokens", headers={"X-Auth-Token": admin, "X-Subject-Token": token},
                     timeout=10)
    return r.status_code


@pytest.fixture(scope="module")
def admin(live: LiveCloud) -> str:
    return cast(str, live.conn("admin").auth_token)


def test_cli_domain_project_user_group_flow(live: LiveCloud, admin: str) -> None:
    d, p, u, g = _name("d"), _name("p"), _name("u"), _name("g")
    domain = live.cli_json("domain", "create", "--description", "first", d)
    assert domain["name"] == d and domain["enabled"] is True
    project = live.cli_json("project", "create", "--domain", d, "--tag", "blue", p)
    assert project["domain_id"] == domain["id"] and project["parent_id"] == domain["id"]
    user = live.cli_json("user", "create", "--domain", d, "--password", "x", "--email", "u@example.org", u)
    assert user["email"] == "u@example.org" and not any("password" in k and k != "password_expires_at" for k in user)
    group = live.cli_json("group", "create", "--domain", d, g)
    live.cli("group", "add", "user", "--group-domain", d, "--user-domain", d, g, u)
    out = live.cli("group", "contains", "user", "--group-domain", d, "--user-domain", d, g, u).stdout
    assert "in group" in out and "not in" not in out
    assert [x["Name"] for x in live.cli_json("user", "list", "--group", group["id"])] == [u]
    assert [x["Name"] for x in live.cli_json("user", "list", "--domain", d)] == [u]
    assert [x["Name"] for x in live.cli_json("project", "list", "--domain", d, "--tags", "blue")] == [p]
    assert [x["Name"] for x in live.cli_json("group", "list", "--user", user["id"])] == [g]
    assert live.cli_json("project", "show", "--domain", d, p)["tags"] == ["blue"]
    live.cli("project", "set", "--domain", d, "--description", "changed", "--disable", p)
    assert live.cli_json("project", "show", "--domain", d, p)["enabled"] is False

    refused = live.cli("domain", "delete", d, check=False)
    assert refused.returncode != 0 and "disable it first" in refused.stderr
    live.cli("domain", "set", "--disable", d)
    live.cli("domain", "delete", d)
    for kind, ident in (("domains", domain["id"]), ("projects", project["id"]), ("users", user["id"]),
                        ("groups", group["id"])):
        assert _call(live, "GET", f"/{kind}/{ident}", admin).status_code == 404


def test_demo_sees_only_its_projects_and_cannot_list_users(live: LiveCloud) -> None:
    demo = live.conn("demo")
    mine = {p.name for p in _identity(live).user_projects(cast(str, demo.current_user_id))}
    listed = {row["Name"] for row in live.cli_json("project", "list", cloud="demo")}
    assert "demo" in listed and "admin" not in listed and listed == mine
    refused = live.cli("user", "list", cloud="demo", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    admin_id = cast(str, live.conn("admin").current_user_id)
    assert _call(live, "GET", f"/users/{admin_id}/projects", cast(str, demo.auth_token)).status_code == 403


def test_password_change_with_cli_revokes_earlier_tokens(live: LiveCloud, admin: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    name = _name("self")
    live.cli("user", "create", "--password", "old-secret", name)
    old = _token(live, name, "old-secret")
    assert _valid(live, admin, old) == 200
    for key, value in {"OS_AUTH_URL": live.url("identity"), "OS_USERNAME": name, "OS_PASSWORD": "old-secret",
                       "OS_USER_DOMAIN_ID": "default", "OS_IDENTITY_API_VERSION": "3",
                       "OS_REGION_NAME": "RegionOne"}.items():
        monkeypatch.setenv(key, value)
    wrong = live.cli("user", "password", "set", "--password", "x", "--original-password", "nope", cloud="", check=False)
    assert wrong.returncode != 0 and "401" in wrong.stderr
    live.cli("user", "password", "set", "--password", "new-secret", "--original-password", "old-secret", cloud="")
    assert _valid(live, admin, old) == 404
    _token(live, name, "new-secret")
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"}, "password": "old-secret"}}}}}
    assert requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=10).status_code == 401


def test_password_change_policy_and_input(live: LiveCloud, admin: str) -> None:
    demo = live.conn("demo")
    other = _identity(live).create_user(name=_name("other"), password="pw")
    body = {"user": {"password": "a", "original_password": "pw"}}
    assert _call(live, "POST", f"/users/{other.id}/password", cast(str, demo.auth_token), json=body).status_code == 403
    assert _call(live, "POST", f"/users/{other.id}/password", admin, json={"user": {"password": "a"}}).status_code == 400
    token = _token(live, other.name, "pw")
    r = _call(live, "POST", f"/users/{other.id}/password", token, json=body)
    assert r.status_code == 204, r.text
    assert _valid(live, admin, token) == 404


def test_admin_updates_revoke_user_tokens(live: LiveCloud, admin: str) -> None:
    ident = _identity(live)
    body = {"user": {"name": _name("upd"), "password": "pw", "description": "d", "team": "blue"}}
    created = _call(live, "POST", "/users", admin, json=body)
    assert created.status_code == 201 and created.json()["user"]["team"] == "blue"
    user = ident.get_user(created.json()["user"]["id"])
    assert user.description == "d"
    fetched = _call(live, "GET", f"/users/{user.id}", admin).json()["user"]
    assert fetched["team"] == "blue" and "password" not in fetched and "$2b$" not in str(fetched)
    token = _token(live, user.name, "pw")
    ident.update_user(user, description="still valid")
    assert _valid(live, admin, token) == 200
    ident.update_user(user, password="pw2")
    assert _valid(live, admin, token) == 404
    token = _token(live, user.name, "pw2")
    ident.update_user(user, is_enabled=False)
    assert _valid(live, admin, token) == 404
    ident.update_user(user, is_enabled=True)
    token = _token(live, user.name, "pw2")
    ident.delete_user(user)
    assert _valid(live, admin, token) == 404
    assert _call(live, "DELETE", f"/users/{user.id}", admin).status_code == 404


def test_group_roles_end_with_membership(live: LiveCloud, admin: str) -> None:
    ident = _identity(live)
    project = ident.create_project(name=_name("gp"), domain_id="default")
    user = ident.create_user(name=_name("gu"), password="pw")
    group = ident.create_group(name=_name("gg"))
    ident.add_user_to_group(user, group)
    assert ident.check_user_in_group(user, group)
    assert [u.id for u in ident.group_users(group)] == [user.id]
    groups = _call(live, "GET", f"/users/{user.id}/groups", admin).json()["groups"]
    assert [(g["id"], g["membership_expires_at"]) for g in groups] == [(group.id, None)]
    live.cli("role", "add", "--group", group.id, "--project", project.id, "member")
    token = _token(live, user.name, "pw", project=project.id)
    assert [p.id for p in ident.user_projects(user)] == [project.id]
    mine = _call(live, "GET", f"/users/{user.id}/projects", token).json()["projects"]
    assert [p["id"] for p in mine] == [project.id]
    assert _call(live, "GET", "/projects", token).status_code == 403  # Keystone's default for a member

    ident.remove_user_from_group(user, group)
    assert not ident.check_user_in_group(user, group)
    assert _call(live, "HEAD", f"/groups/{group.id}/users/{user.id}", admin).status_code == 404
    assert _valid(live, admin, token) == 404
    user_auth = {"methods": ["password"], "password": {"user": {"id": user.id, "password": "pw"}}}
    body: dict[str, Any] = {"auth": {"identity": user_auth, "scope": {"project": {"id": project.id}}}}
    assert requests.post(live.url("identity") + "/auth/tokens", json=body, timeout=10).status_code == 401
    assert _call(live, "DELETE", f"/groups/{group.id}/users/{user.id}", admin).status_code == 404
    ident.delete_group(group)
    assert _call(live, "GET", f"/groups/{group.id}", admin).status_code == 404


def test_project_hierarchy_and_tags(live: LiveCloud, admin: str) -> None:
    ident = _identity(live)
    parent = ident.create_project(name=_name("parent"), domain_id="default")
    child = ident.create_project(name=_name("child"), parent_id=parent.id)
    assert child.parent_id == parent.id and child.domain_id == "default"
    shown = _call(live, "GET", f"/projects/{child.id}?parents_as_ids", admin).json()["project"]
    assert shown["parents"] == {parent.id: {"default": None}}
    shown = _call(live, "GET", f"/projects/{parent.id}?subtree_as_ids", admin).json()["project"]
    assert shown["subtree"] == {child.id: None}
    r = _call(live, "DELETE", f"/projects/{parent.id}", admin)
    assert r.status_code == 403 and "not a leaf" in r.json()["error"]["message"]
    r = _call(live, "PATCH", f"/projects/{child.id}", admin, json={"project": {"parent_id": "default"}})
    assert r.status_code == 403

    base = f"/projects/{child.id}/tags"
    r = _call(live, "PUT", f"{base}/red", admin)
    assert r.status_code == 201 and r.headers["Location"].endswith(f"{base}/red")
    assert _call(live, "PUT", f"{base}/red", admin).status_code == 400
    assert _call(live, "GET", f"{base}/red", admin).status_code == 204
    r = _call(live, "PUT", base, admin, json={"tags": ["a", "b", "c"]})
    assert r.status_code == 200 and r.json()["tags"] == ["a", "b", "c"]
    assert _call(live, "PUT", base, admin, json={"tags": ["x/y"]}).status_code == 400
    found = _call(live, "GET", "/projects?tags=a,b&not-tags-any=z", admin).json()["projects"]
    assert [p["id"] for p in found] == [child.id]
    assert _call(live, "DELETE", f"{base}/a", admin).status_code == 204
    assert _call(live, "GET", f"{base}/a", admin).status_code == 404
    assert _call(live, "DELETE", f"{base}/a", admin).status_code == 404
    assert _call(live, "GET", base, admin).json()["tags"] == ["b", "c"]
    assert _call(live, "DELETE", base, admin).status_code == 204
    assert _call(live, "GET", base, admin).json()["tags"] == []

    ident.delete_project(child)
    ident.delete_project(parent)
    assert _call(live, "GET", f"/projects/{parent.id}", admin).status_code == 404


def test_immutable_projects(live: LiveCloud) -> None:
    name = _name("frozen")
    assert live.cli_json("project", "create", "--immutable", name)["options"] == {"immutable": True}
    for args in (("project", "set", "--description", "x", name), ("project", "delete", name),
                 ("project", "set", "--tag", "t", name)):
        refused = live.cli(*args, check=False)
        assert refused.returncode != 0 and "immutable" in refused.stderr, args
    live.cli("project", "set", "--no-immutable", name)
    live.cli("project", "delete", name)


def test_bad_input_is_refused_and_writes_nothing(live: LiveCloud, admin: str) -> None:
    def count() -> int:
        return sum(len(_call(live, "GET", f"/{kind}", admin).json()[kind]) for kind in ("domains", "projects", "users",
                                                                                        "groups"))

    before = count()
    raw = requests.post(live.url("identity") + "/projects", data=b"{nope", timeout=10,
                        headers={"X-Auth-Token": admin, "Content-Type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == 400
    taken = _name("taken")
    _identity(live).create_domain(name=taken)
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("/domains", {"domain": {"name": ""}}, 400),
        ("/domains", {"domain": {"name": "a" * 65}}, 400),
        ("/domains", {"domain": {"name": taken}}, 409),
        ("/domains", {"domain": {"name": _name("x"), "explicit_domain_id": "not-a-uuid"}}, 400),
        ("/domains", {"name": "unwrapped"}, 400),
        ("/projects", {"project": {"name": "demo"}}, 409),
        ("/projects", {"project": {"name": _name("x"), "enabled": "yes"}}, 400),
        ("/projects", {"project": {"name": _name("x"), "domain_id": "nosuchdomain"}}, 400),
        ("/projects", {"project": {"name": _name("x"), "parent_id": "nosuchproject"}}, 400),
        ("/projects", {"project": {"name": _name("x"), "tags": ["dup", "dup"]}}, 400),
        ("/projects", {"project": {"name": _name("x"), "options": {"bogus": True}}}, 400),
        ("/users", {"user": {"name": _name("x"), "domain_id": "nosuchdomain"}}, 404),
        ("/users", {"user": {"name": "demo"}}, 409),
        ("/users", {"user": {"name": _name("x"), "password": 5}}, 400),
        ("/groups", {"group": {"name": _name("x"), "domain_id": "nosuchdomain"}}, 404),
        ("/groups", {"group": {}}, 400),
    ]
    for path, body, status in cases:
        r = _call(live, "POST", path, admin, json=body)
        assert r.status_code == status, (path, body, r.text)
        assert set(r.json()["error"]) == {"code", "title", "message"}
    assert count() == before + 1

    demo_id = cast(str, live.conn("demo").current_user_id)
    assert _call(live, "PATCH", f"/users/{demo_id}", admin, json={"user": {"domain_id": "other"}}).status_code == 400
    assert _call(live, "PATCH", f"/users/{demo_id}", admin, json={"user": {"id": "other"}}).status_code == 400
    assert _call(live, "PATCH", f"/users/{demo_id}", admin, json={"user": {}}).status_code == 400
    assert _call(live, "PATCH", f"/users/{demo_id}", admin, json={"user": {"name": "admin"}}).status_code == 409
    for path in ("/projects/nope", "/users/nope", "/groups/nope", "/domains/nope"):
        assert _call(live, "DELETE", path, admin).status_code == 404
        assert _call(live, "GET", path, admin).status_code == 404
    r = _call(live, "PUT", f"/groups/nope/users/{demo_id}", admin)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Could not find group: nope."


def test_projects_acting_as_domains(live: LiveCloud, admin: str) -> None:
    name = _name("pad")
    r = _call(live, "POST", "/projects", admin, json={"project": {"name": name, "is_domain": True, "domain_id": None}})
    assert r.status_code == 201, r.text
    project = r.json()["project"]
    assert project["is_domain"] is True and project["domain_id"] is None
    assert _call(live, "GET", f"/domains/{project['id']}", admin).json()["domain"]["name"] == name
    listed = _call(live, "GET", "/projects?is_domain=true", admin).json()["projects"]
    assert project["id"] in {p["id"] for p in listed}
    assert project["id"] not in {p["id"] for p in _call(live, "GET", "/projects", admin).json()["projects"]}
    assert _call(live, "DELETE", f"/projects/{project['id']}", admin).status_code == 400
    r = _call(live, "PATCH", f"/projects/{project['id']}", admin, json={"project": {"enabled": False}})
    assert r.status_code == 200 and r.json()["project"]["enabled"] is False
    assert _call(live, "DELETE", f"/projects/{project['id']}", admin).status_code == 204
    assert _call(live, "GET", f"/domains/{project['id']}", admin).status_code == 404


def test_domain_disable_revokes_its_tokens(live: LiveCloud, admin: str) -> None:
    ident = _identity(live)
    domain = ident.create_domain(name=_name("dd"))
    project = ident.create_project(name=_name("dp"), domain_id=domain.id)
    user = ident.create_user(name=_name("du"), password="pw", domain_id=domain.id)
    live.cli("role", "add", "--user", user.id, "--project", project.id, "member")
    unscoped = _token(live, user.name, "pw", domain=domain.id)
    scoped = _token(live, user.name, "pw", domain=domain.id, project=project.id)
    assert _valid(live, admin, unscoped) == _valid(live, admin, scoped) == 200
    ident.update_domain(domain, is_enabled=False)
    assert _valid(live, admin, unscoped) == _valid(live, admin, scoped) == 404
    ident.update_domain(domain, is_enabled=True)
    assert _valid(live, admin, scoped) == 404
    listed = _call(live, "GET", f"/domains?name={domain.name}&enabled=true", admin).json()["domains"]
    assert [d["id"] for d in listed] == [domain.id]


def test_head_requests(live: LiveCloud, admin: str) -> None:
    demo_id = cast(str, live.conn("demo").current_user_id)
    r = _call(live, "HEAD", f"/users/{demo_id}", admin)
    assert r.status_code == 200 and not r.content
    assert _call(live, "HEAD", "/users/nope", admin).status_code == 404
    assert _call(live, "HEAD", "/projects", admin).status_code == 200
