"""Roles, implied roles, grants and role assignments: the expansion rules on a scratch database, then the
real openstacksdk and openstack CLI against a live cloud."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from sqlalchemy.orm import Session

from tests.livecloud import LiveCloud
from tinystack.core import errors
from tinystack.core.db import Base, Database, new_id
from tinystack.identity import assignment_listing, assignments, roles
from tinystack.identity.assignment_listing import Entry, Query
from tinystack.identity.assignment_views import render_assignment
from tinystack.identity.assignments import Grant
from tinystack.identity.models import TABLES, Domain, Group, Membership, Project, User
from tinystack.identity.tokens import TokenService

pytestmark = pytest.mark.api

# --- unit tests of the rules -------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'identity.db'}")
    Base.metadata.create_all(database.engine, tables=TABLES)
    yield database
    database.dispose()


@dataclass
class World:
    """D holds P, whose child is C; E is another domain with project Q. U is in group G."""

    ids: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        return self.ids[key]


def _world(s: Session) -> World:
    w = World({name: new_id() for name in ("P", "C", "Q", "U", "V", "G")})
    w.ids.update(D="dom-d", E="dom-e")
    s.add_all([Domain(id="dom-d", name="D"), Domain(id="dom-e", name="E")])
    s.flush()
    s.add_all([Project(id=w["P"], name="p", domain_id="dom-d"), Project(id=w["Q"], name="q", domain_id="dom-e")])
    s.flush()
    s.add(Project(id=w["C"], name="c", domain_id="dom-d", parent_id=w["P"]))
    s.add_all([User(id=w["U"], name="u", domain_id="dom-d"), User(id=w["V"], name="v", domain_id="dom-e"),
               Group(id=w["G"], name="g", domain_id="dom-d")])
    s.flush()
    s.add(Membership(user_id=w["U"], group_id=w["G"]))
    for name in ("r1", "r2", "r3", "r4", "r5", "r6"):
        w.ids[name] = assignments.create_role(s, {"name": name}).id
    w.ids["dr"] = assignments.create_role(s, {"name": "dr", "domain_id": "dom-d"}).id
    assignments.add_implied(s, w["r1"], w["r2"])
    assignments.add_implied(s, w["dr"], w["r3"])
    return w


def _grant(s: Session, actor: str, actor_id: str, kind: str, target: str, role: str, inherited: bool = False) -> None:
    assignments.add_grant(s, Grant(actor, actor_id, kind, target, inherited), role)


def _populate(s: Session) -> World:
    w = _world(s)
    _grant(s, "user", w["U"], "project", w["P"], w["r1"])  # r1 on P, implies r2
    _grant(s, "group", w["G"], "project", w["P"], w["r3"])  # r3 on P through the group
    _grant(s, "user", w["U"], "domain", w["D"], w["r4"], inherited=True)  # r4 on every project of D
    _grant(s, "user", w["U"], "project", w["P"], w["r5"], inherited=True)  # r5 on P's subtree only
    _grant(s, "user", w["U"], "project", w["P"], w["dr"])  # domain role: only what it implies shows
    _grant(s, "user", w["U"], "domain", w["D"], w["r6"])  # r6 on the domain itself
    _grant(s, "user", w["V"], "system", "system", w["r6"])
    return w


def test_effective_expansion_on_a_project(db: Database) -> None:
    with db.session() as s:
        w = _populate(s)
        found = assignment_listing.list_assignments(s, Query(user_id=w["U"], project_id=w["P"], effective=True))
        by_role = {(e.role_id, e.prior_role_id, e.via_group, e.via_domain, e.via_project) for e in found}
        assert by_role == {
            (w["r1"], None, None, None, None),
            (w["r2"], w["r1"], None, None, None),
            (w["r3"], None, w["G"], None, None),
            (w["r4"], None, None, w["D"], None),
            (w["r3"], w["dr"], None, None, None),
        }
        assert all(e.user_id == w["U"] and e.project_id == w["P"] and e.group_id is None for e in found)
        child = assignment_listing.list_assignments(s, Query(user_id=w["U"], project_id=w["C"], effective=True))
        assert {(e.role_id, e.via_project, e.via_domain) for e in child} == {(w["r4"], None, w["D"]),
                                                                           (w["r5"], w["P"], None)}
        assert all(e.inherited for e in child)


def test_effective_listing_agrees_with_token_roles(db: Database) -> None:
    with db.session() as s:
        w = _populate(s)
        for user in ("U", "V"):
            for kind, target in (("project", "P"), ("project", "C"), ("project", "Q"), ("domain", "D")):
                q = Query(user_id=w[user], effective=True, **{f"{kind}_id": w[target]})  # type: ignore[arg-type]
                listed = {e.role_id for e in assignment_listing.list_assignments(s, q)}
                token = {r.id for r in roles.effective_roles(s, w[user], kind, w[target])}
                assert listed == token, (user, kind, target)
        system = assignment_listing.list_assignments(s, Query(user_id=w["V"], system=True, effective=True))
        assert {e.role_id for e in system} == {r.id for r in roles.effective_roles(s, w["V"], "system", None)}


def test_effective_without_filters_expands_groups_and_inheritance(db: Database) -> None:
    with db.session() as s:
        w = _populate(s)
        found = assignment_listing.list_assignments(s, Query(effective=True))
        assert not any(e.group_id for e in found)
        assert not any(e.system for e in found)  # as in Keystone, effective mode lists no system grants
        inherited_r4 = {e.project_id for e in found if e.role_id == w["r4"]}
        assert inherited_r4 == {w["P"], w["C"]}
        assert {e.project_id for e in found if e.role_id == w["r5"]} == {w["C"]}
        assert (w["r6"], w["D"]) in {(e.role_id, e.domain_id) for e in found}
        assert w["dr"] not in {e.role_id for e in found}


def test_direct_listing_filters(db: Database) -> None:
    with db.session() as s:
        w = _populate(s)
        everything = assignment_listing.list_assignments(s, Query())
        assert len(everything) == 7
        assert [e.user_id for e in everything if e.system] == [w["V"]]
        inherited = assignment_listing.list_assignments(s, Query(inherited=True, user_id=w["U"]))
        assert {e.role_id for e in inherited} == {w["r4"], w["r5"]}
        groups = assignment_listing.list_assignments(s, Query(group_id=w["G"]))
        assert [(e.group_id, e.role_id) for e in groups] == [(w["G"], w["r3"])]
        on_domain = assignment_listing.list_assignments(s, Query(domain_id=w["D"]))
        assert {e.role_id for e in on_domain} == {w["r4"], w["r6"]}
        system = assignment_listing.list_assignments(s, Query(system=True))
        assert [e.role_id for e in system] == [w["r6"]]
        by_role = assignment_listing.list_assignments(s, Query(role_id=w["r1"]))
        assert [(e.user_id, e.project_id) for e in by_role] == [(w["U"], w["P"])]
        tree = assignment_listing.list_assignments(s, Query(project_id=w["P"], include_subtree=True, effective=True,
                                                     user_id=w["U"]))
        assert {e.project_id for e in tree} == {w["P"], w["C"]}


def test_implied_cycles_terminate(db: Database) -> None:
    with db.session() as s:
        w = _world(s)
        assignments.add_implied(s, w["r2"], w["r1"])  # r1 -> r2 -> r1
        _grant(s, "user", w["U"], "project", w["P"], w["r1"])
        found = assignment_listing.list_assignments(s, Query(user_id=w["U"], effective=True))
        assert sorted(e.role_id for e in found) == sorted([w["r1"], w["r2"], w["r1"]])
        assert {r.id for r in roles.effective_roles(s, w["U"], "project", w["P"])} == {w["r1"], w["r2"]}


def test_role_and_implication_rules(db: Database) -> None:
    with db.session() as s:
        w = _world(s)
        with pytest.raises(errors.Conflict):
            assignments.create_role(s, {"name": "r1"})
        assignments.create_role(s, {"name": "r1", "domain_id": "dom-e"})  # unique per domain only
        with pytest.raises(errors.NotFound):
            assignments.create_role(s, {"name": "x", "domain_id": "nope"})
        with pytest.raises(errors.Forbidden):
            assignments.add_implied(s, w["r1"], w["dr"])  # global cannot imply domain-specific
        with pytest.raises(errors.Conflict):
            assignments.add_implied(s, w["r1"], w["r2"])
        admin = assignments.create_role(s, {"name": "admin"})
        with pytest.raises(errors.Forbidden):
            assignments.add_implied(s, w["r1"], admin.id)
        with pytest.raises(errors.BadRequest):
            assignments.update_role(s, w["dr"], {"domain_id": "dom-e"})
        locked = assignments.create_role(s, {"name": "locked", "options": {"immutable": True}})
        with pytest.raises(errors.Forbidden):
            assignments.update_role(s, locked.id, {"name": "other"})
        with pytest.raises(errors.Forbidden):
            assignments.delete_role(s, locked.id)
        assignments.update_role(s, locked.id, {"options": {"immutable": False}})
        assignments.delete_role(s, locked.id)
        _grant(s, "user", w["U"], "project", w["P"], w["r1"])
        assignments.delete_role(s, w["r1"])
        assert assignment_listing.list_assignments(s, Query(user_id=w["U"])) == []
        assert assignments.implied_by(s, w["r2"])[1] == []
        assert [p.id for p, _ in assignments.inference_rules(s)] == [w["dr"]]


class FakeTokens:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def revoke(self, s: Session, **kw: Any) -> None:
        self.calls.append(kw)


def test_grant_rules_and_token_revocation(db: Database) -> None:
    tokens = FakeTokens()
    with db.session() as s:
        w = _world(s)
        g = Grant("group", w["G"], "project", w["P"])
        assignments.add_grant(s, g, w["r1"])
        assignments.add_grant(s, g, w["r1"])  # idempotent
        assert [r.id for r in assignments.list_grants(s, g)] == [w["r1"]]
        assignments.check_grant(s, g, w["r1"])
        with pytest.raises(errors.NotFound):
            assignments.check_grant(s, g, w["r2"])
        with pytest.raises(errors.NotFound):
            assignments.add_grant(s, Grant("user", "ghost", "project", w["P"]), w["r1"])
        with pytest.raises(errors.NotFound):
            assignments.add_grant(s, Grant("user", w["U"], "project", "ghost"), w["r1"])
        with pytest.raises(errors.Forbidden):
            assignments.add_grant(s, Grant("user", w["U"], "project", w["Q"]), w["dr"])
        with pytest.raises(errors.BadRequest):
            assignments.add_grant(s, Grant("user", w["U"], "system"), w["dr"])
        assignments.remove_grant(s, cast(TokenService, tokens), g, w["r1"])
        assert tokens.calls == [{"user_id": w["U"], "project_id": w["P"]}]
        with pytest.raises(errors.NotFound):
            assignments.remove_grant(s, cast(TokenService, tokens), g, w["r1"])
        tokens.calls.clear()
        inherited = Grant("user", w["U"], "project", w["P"], inherited=True)
        assignments.add_grant(s, inherited, w["r1"])
        assignments.remove_grant(s, cast(TokenService, tokens), inherited, w["r1"])
        assert tokens.calls == [{"user_id": w["U"], "project_id": w["C"]}]


def test_render_keystone_shapes() -> None:
    base = "http://h:5000"
    e = Entry("R", user_id="U", project_id="P", inherited=True, via_group="G", via_domain="D", prior_role_id="Q")
    out = render_assignment(base, e, None)
    assert out == {
        "scope": {"project": {"id": "P"}, "OS-INHERIT:inherited_to": "projects"},
        "user": {"id": "U"},
        "role": {"id": "R"},
        "links": {"membership": f"{base}/v3/groups/G/users/U",
                  "assignment": f"{base}/v3/OS-INHERIT/domains/D/groups/G/roles/Q/inherited_to_projects",
                  "prior_role": f"{base}/v3/roles/Q/implies/R"},
    }
    system = render_assignment(base, Entry("R", group_id="G", system=True), None)
    assert system["scope"] == {"system": {"all": True}}
    assert system["links"] == {"assignment": f"{base}/v3/system/groups/G/roles/R"}


# --- against the live cloud -------------------------------------------------------------------


_admin_tokens: dict[int, str] = {}


def _admin_token(live: LiveCloud) -> str:
    if id(live) not in _admin_tokens:
        _admin_tokens[id(live)] = str(live.conn("admin").auth_token)
    return _admin_tokens[id(live)]


def _http(live: LiveCloud, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
    headers = {"X-Auth-Token": token or _admin_token(live), **kw.pop("headers", {})}
    return requests.request(method, live.url("identity") + path, headers=headers, timeout=30, **kw)


def _make_user(live: LiveCloud) -> tuple[str, str, str]:
    name, password = f"user-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    user = live.cli_json("user", "create", name, f"--password={password}", "--domain", "default")
    return user["id"], name, password


def _make_group(live: LiveCloud) -> str:
    return str(live.cli_json("group", "create", f"group-{secrets.token_hex(4)}", "--domain", "default")["id"])


def _project_id(live: LiveCloud, name: str) -> str:
    return str(live.cli_json("project", "show", name, "--domain", "default")["id"])


def _token_for(live: LiveCloud, username: str, password: str, project: str) -> str:
    conn = live.conn(username=username, password=password, project_name=project, user_domain_id="default",
                     project_domain_id="default")
    return str(conn.auth_token)


def _validate(live: LiveCloud, token: str) -> requests.Response:
    return _http(live, "GET", "/auth/tokens", headers={"X-Subject-Token": token})


def _token_roles(live: LiveCloud, token: str) -> set[str]:
    r = _validate(live, token)
    assert r.status_code == 200, r.text
    return {role["name"] for role in r.json()["token"]["roles"]}


def test_role_crud_with_the_cli(live: LiveCloud) -> None:
    name = f"role-{secrets.token_hex(4)}"
    created = live.cli_json("role", "create", name, "--description", "made by a test")
    assert created["name"] == name and created["description"] == "made by a test" and created["domain_id"] is None
    assert live.cli_json("role", "show", name)["id"] == created["id"]
    dup = live.cli("role", "create", name, check=False)
    assert dup.returncode != 0 and "409" in dup.stderr
    assert live.cli_json("role", "create", name, "--or-show")["id"] == created["id"]
    live.cli("role", "set", name, "--name", name + "-x", "--description", "renamed")
    shown = live.cli_json("role", "show", created["id"])
    assert (shown["name"], shown["description"]) == (name + "-x", "renamed")
    assert created["id"] in {r["ID"] for r in live.cli_json("role", "list")}
    live.cli("role", "delete", created["id"])
    assert live.cli("role", "show", created["id"], check=False).returncode != 0


def test_domain_roles_with_the_sdk(live: LiveCloud) -> None:
    conn = live.conn("admin")
    role = conn.identity.create_role(name=f"drole-{secrets.token_hex(4)}", domain_id="default")
    try:
        assert role.domain_id == "default"
        assert [r.id for r in conn.identity.roles(domain_id="default")] == [role.id]
        assert role.id not in {r.id for r in conn.identity.roles()}
        r = _http(live, "PATCH", f"/roles/{role.id}", json={"role": {"domain_id": None}})
        assert r.status_code == 400 and r.json()["error"]["code"] == 400
        r = _http(live, "POST", "/roles", json={"role": {"name": role.name, "domain_id": "default"}})
        assert r.status_code == 409
    finally:
        conn.identity.delete_role(role)


def test_bad_role_input(live: LiveCloud) -> None:
    assert _http(live, "POST", "/roles", json={"role": {"name": ""}}).status_code == 400
    assert _http(live, "POST", "/roles", json={"role": {}}).status_code == 400
    assert _http(live, "POST", "/roles", json={"name": "x"}).status_code == 400
    assert _http(live, "POST", "/roles", data=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400
    assert _http(live, "PATCH", f"/roles/{new_id()}", json={"role": {"name": "y"}}).status_code == 404
    r = _http(live, "GET", f"/roles/{new_id()}")
    assert r.status_code == 404 and set(r.json()["error"]) == {"code", "title", "message"}
    demo = live.conn("demo").auth_token
    assert _http(live, "POST", "/roles", token=demo, json={"role": {"name": "nope"}}).status_code == 403
    assert _http(live, "GET", "/role_assignments", token=demo).status_code == 403
    assert not [r for r in live.conn("admin").identity.roles(name="nope")]


def test_implied_roles_with_the_cli(live: LiveCloud) -> None:
    prior = live.cli_json("role", "create", f"prior-{secrets.token_hex(4)}")
    implied = live.cli_json("role", "create", f"implied-{secrets.token_hex(4)}")
    try:
        out = live.cli_json("implied", "role", "create", prior["name"], "--implied-role", implied["name"])
        assert out == {"prior_role": prior["id"], "implies": implied["id"]}
        rules = live.cli_json("implied", "role", "list")
        assert {"Prior Role ID": prior["id"], "Prior Role Name": prior["name"], "Implied Role ID": implied["id"],
                "Implied Role Name": implied["name"]} in rules
        bootstrap = {(r["Prior Role Name"], r["Implied Role Name"]) for r in rules}
        assert {("admin", "member"), ("member", "reader")} <= bootstrap
        path = f"/roles/{prior['id']}/implies/{implied['id']}"
        assert _http(live, "HEAD", path).status_code == 204
        body = _http(live, "GET", path).json()
        assert body["role_inference"]["prior_role"]["id"] == prior["id"]
        assert body["role_inference"]["implies"]["name"] == implied["name"]
        assert _http(live, "PUT", path).status_code == 409
        listed = _http(live, "GET", f"/roles/{prior['id']}/implies").json()["role_inference"]
        assert [r["id"] for r in listed["implies"]] == [implied["id"]]
        admin_id = live.cli_json("role", "show", "admin")["id"]
        assert _http(live, "PUT", f"/roles/{prior['id']}/implies/{admin_id}").status_code == 403
        live.cli("implied", "role", "delete", prior["name"], "--implied-role", implied["name"])
        assert _http(live, "GET", path).status_code == 404
        assert _http(live, "PUT", f"/roles/{new_id()}/implies/{implied['id']}").status_code == 404
    finally:
        live.cli("role", "delete", prior["id"], implied["id"])


def test_group_grant_reaches_a_member_token(live: LiveCloud) -> None:
    conn = live.conn("admin")
    role = live.cli_json("role", "create", f"grole-{secrets.token_hex(4)}")
    group_id = _make_group(live)
    user_id, username, password = _make_user(live)
    live.cli("group", "add", "user", group_id, user_id)
    demo = _project_id(live, "demo")
    try:
        live.cli("role", "add", "--group", group_id, "--project", "demo", role["name"])
        assert conn.identity.validate_group_has_project_role(demo, group_id, role["id"])
        listed = _http(live, "GET", f"/projects/{demo}/groups/{group_id}/roles").json()["roles"]
        assert [r["name"] for r in listed] == [role["name"]]
        token = _token_for(live, username, password, "demo")
        assert _token_roles(live, token) == {role["name"]}
        entries = [(a.role["id"], a.scope, a.links.get("membership"))
                   for a in conn.identity.role_assignments(user_id=user_id, effective=True)]
        assert entries == [(role["id"], {"project": {"id": demo}},
                            f"{live.url('identity')}/groups/{group_id}/users/{user_id}")]
        rows = live.cli_json("role", "assignment", "list", "--names", "--effective", "--user", username)
        assert [(r["Role"], r["Project"], r["Group"]) for r in rows] == [(role["name"], "demo@Default", "")]
        live.cli("role", "remove", "--group", group_id, "--project", "demo", role["name"])
        assert _validate(live, token).status_code == 404
        assert not conn.identity.validate_group_has_project_role(demo, group_id, role["id"])
    finally:
        live.cli("role", "delete", role["id"])
        live.cli("user", "delete", user_id)
        live.cli("group", "delete", group_id)


def test_grant_paths_and_errors(live: LiveCloud) -> None:
    conn = live.conn("admin")
    role = conn.identity.create_role(name=f"prole-{secrets.token_hex(4)}")
    user_id, _, _ = _make_user(live)
    group_id = _make_group(live)
    demo = _project_id(live, "demo")
    paths = [f"/projects/{demo}/users/{user_id}/roles", f"/projects/{demo}/groups/{group_id}/roles",
             f"/domains/default/users/{user_id}/roles", f"/domains/default/groups/{group_id}/roles",
             f"/system/users/{user_id}/roles", f"/system/groups/{group_id}/roles"]
    inherited = [f"/OS-INHERIT/domains/default/users/{user_id}/roles",
                 f"/OS-INHERIT/domains/default/groups/{group_id}/roles"]
    try:
        for base in paths:
            member = f"{base}/{role.id}"
            assert _http(live, "HEAD", member).status_code == 404, base
            assert _http(live, "PUT", member).status_code == 204, base
            assert _http(live, "PUT", member).status_code == 204, base
            assert _http(live, "HEAD", member).status_code == 204, base
            assert _http(live, "GET", member).status_code == 204, base
            assert [r["id"] for r in _http(live, "GET", base).json()["roles"]] == [role.id], base
            assert _http(live, "DELETE", member).status_code == 204, base
            assert _http(live, "DELETE", member).status_code == 404, base
            assert _http(live, "PUT", f"{base}/{new_id()}").status_code == 404, base
        for base in inherited:
            member = f"{base}/{role.id}/inherited_to_projects"
            assert _http(live, "PUT", member).status_code == 204, base
            assert _http(live, "HEAD", member).status_code == 204, base
            listed = _http(live, "GET", f"{base}/inherited_to_projects").json()["roles"]
            assert [r["id"] for r in listed] == [role.id]
            assert _http(live, "GET", base.removeprefix("/OS-INHERIT")).json()["roles"] == []
            assert _http(live, "DELETE", member).status_code == 204, base
        project_inherited = f"/OS-INHERIT/projects/{demo}/users/{user_id}/roles/{role.id}/inherited_to_projects"
        assert _http(live, "PUT", project_inherited).status_code == 204
        assert _http(live, "DELETE", project_inherited).status_code == 204
        assert _http(live, "PUT", f"/projects/{new_id()}/users/{user_id}/roles/{role.id}").status_code == 404
        assert _http(live, "PUT", f"/projects/{demo}/users/{new_id()}/roles/{role.id}").status_code == 404
        assert _http(live, "PUT", f"/domains/{new_id()}/groups/{group_id}/roles/{role.id}").status_code == 404
        assert _http(live, "PUT", f"/system/users/{new_id()}/roles/{role.id}").status_code == 404
    finally:
        conn.identity.delete_role(role)
        conn.identity.delete_user(user_id)
        conn.identity.delete_group(group_id)


def test_role_assignment_query_rules(live: LiveCloud) -> None:
    bad = ["scope.project.id=a&scope.domain.id=b", "scope.system=all&scope.domain.id=b", "user.id=a&group.id=b",
           "effective&group.id=g", "effective&scope.domain.id=d&scope.OS-INHERIT:inherited_to=projects",
           "include_subtree"]
    for query in bad:
        r = _http(live, "GET", f"/role_assignments?{query}")
        assert r.status_code == 400, query
    assert _http(live, "GET", f"/role_assignments?include_subtree&scope.project.id={new_id()}").status_code == 404
    body = _http(live, "GET", "/role_assignments?scope.system=all&include_names").json()
    admin = [a for a in body["role_assignments"] if a["user"]["name"] == "admin"]
    assert admin and admin[0]["scope"] == {"system": {"all": True}} and admin[0]["role"]["name"] == "admin"
    assert admin[0]["user"]["domain"] == {"id": "default", "name": "Default"}
    assert body["links"]["self"].endswith("/v3/role_assignments?scope.system=all&include_names")


def test_role_add_list_and_remove_with_the_cli(live: LiveCloud) -> None:
    # A user and project of its own: removing a role revokes the user's tokens on the project, and the session
    # cloud's demo tokens are held by other modules' fixtures.
    name = live.project_conn("roles").config.auth["username"]
    role = f"newrole-{secrets.token_hex(4)}"
    live.cli("role", "create", role)
    try:
        live.cli("role", "add", "--project", name, "--user", name, role)
        rows = live.cli_json("role", "assignment", "list", "--names", "--effective", "--user", name)
        mine = {(r["Role"], r["User"], r["Project"]) for r in rows}
        assert (role, f"{name}@Default", f"{name}@Default") in mine
        assert ("reader", f"{name}@Default", f"{name}@Default") in mine  # implied by member
        plain = live.cli_json("role", "assignment", "list", "--names", "--user", name, "--project", name)
        assert {r["Role"] for r in plain} == {"member", role}
        live.cli("role", "remove", "--project", name, "--user", name, role)
        rows = live.cli_json("role", "assignment", "list", "--names", "--user", name)
        assert role not in {r["Role"] for r in rows}
    finally:
        live.cli("role", "delete", role)


def test_role_remove_invalidates_earlier_tokens(live: LiveCloud) -> None:
    conn = live.conn("admin")
    extra = conn.identity.create_role(name=f"xrole-{secrets.token_hex(4)}")
    member = conn.identity.find_role("member")
    user_id, username, password = _make_user(live)
    demo = _project_id(live, "demo")
    try:
        conn.identity.assign_project_role_to_user(demo, user_id, member)
        conn.identity.assign_project_role_to_user(demo, user_id, extra)
        earlier = _token_for(live, username, password, "demo")
        assert _token_roles(live, earlier) == {"member", "reader", extra.name}
        live.cli("role", "remove", "--project", "demo", "--user", username, extra.name)
        assert _validate(live, earlier).status_code == 404
        fresh = _token_for(live, username, password, "demo")
        assert _token_roles(live, fresh) == {"member", "reader"}
        reader = conn.identity.find_role("reader")
        rows = conn.identity.role_assignments(scope_project_id=demo, effective=True, role_id=reader.id)
        assert user_id in {a.user["id"] for a in rows}
        rows = conn.identity.role_assignments(user_id=user_id, effective=True)
        assert {a.role["id"] for a in rows} == {member.id, reader.id}
    finally:
        conn.identity.delete_role(extra)
        conn.identity.delete_user(user_id)
