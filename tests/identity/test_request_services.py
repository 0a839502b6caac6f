"""The identity service layer without HTTP: writes run off the event loop and always drop cached token
validations, policy decides before bodies and filters are read, and the request parsing the API hands on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.waiting import until
from tinystack import config
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.identity.assignment_ops import grant_rule, parse_query
from tinystack.identity.assignments import Grant
from tinystack.identity.auth_ops import v2_as_v3
from tinystack.identity.models import Domain, Region, User
from tinystack.identity.service import MIGRATIONS, IdentityService

pytestmark = pytest.mark.unit

ADMIN = RequestContext(user_id="a", project_id="p", roles=("admin", "member", "reader"))
MEMBER = RequestContext(user_id="u", project_id="p", roles=("member", "reader"))


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[IdentityService]:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
    db = Database(cfg.database_url)
    db.migrate("identity", MIGRATIONS)
    yield IdentityService(cfg, db, PolicyEngine())
    db.dispose()


def test_write_runs_in_a_worker_thread_and_drops_cached_validations(svc: IdentityService) -> None:
    seen: list[int] = []
    hooks: list[int] = []
    svc.on_change.append(lambda: hooks.append(threading.get_ident()))
    before = svc.tokens.generation

    def fn(s: Session) -> str:
        seen.append(threading.get_ident())
        return "done"

    assert asyncio.run(svc.write(fn)) == "done"
    assert seen and seen[0] != threading.get_ident()
    # The hooks (which publish on the bus) run back on the caller's thread, not the worker's.
    assert hooks == [threading.get_ident()]
    assert svc.tokens.generation == before + 1

    def fails(s: Session) -> None:
        raise errors.Conflict("no")

    with pytest.raises(errors.Conflict):
        asyncio.run(svc.write(fails))
    assert svc.tokens.generation == before + 2


def test_policy_is_checked_before_the_body(svc: IdentityService) -> None:
    # A caller the rule refuses learns nothing about the body it sent: 403, not 400, and nothing written.
    with pytest.raises(errors.Forbidden):
        asyncio.run(svc.catalog.create_region(MEMBER, {"region": {"bogus": object()}}))
    with pytest.raises(errors.BadRequest):
        asyncio.run(svc.catalog.create_region(ADMIN, {"region": {"description": 3}}))
    with pytest.raises(errors.BadRequest, match="Conflicting region IDs"):
        asyncio.run(svc.catalog.create_region(ADMIN, {"region": {"id": "a"}}, "b"))
    region = asyncio.run(svc.catalog.create_region(ADMIN, {"region": {"description": "x"}}, "r1"))
    assert region.id == "r1"
    with svc.session() as s:
        assert [r.id for r in s.query(Region)] == ["r1"]
    with pytest.raises(errors.Forbidden):
        svc.assignments.list_assignments(MEMBER, {"scope.project.id": "p", "scope.domain.id": "d"})
    with pytest.raises(errors.Forbidden):
        asyncio.run(svc.credentials.create_ec2(MEMBER, "someone-else", {}))


def test_user_writes_and_their_policy(svc: IdentityService) -> None:
    with svc.changing() as s:
        s.add(Domain(id="default", name="Default"))
    user = asyncio.run(svc.users.create_user(ADMIN, {"name": "alice", "domain_id": "default"}))
    assert svc.users.get_user(ADMIN, user.id).name == "alice"
    # A member may read itself only; another user's id is refused before its existence is admitted.
    with pytest.raises(errors.Forbidden):
        svc.users.get_user(MEMBER, user.id)
    with pytest.raises(errors.Forbidden):
        svc.users.get_user(MEMBER, "no-such-user")
    with pytest.raises(errors.NotFound):
        svc.users.get_user(ADMIN, "no-such-user")
    with pytest.raises(errors.Conflict):
        asyncio.run(svc.users.create_user(ADMIN, {"name": "alice", "domain_id": "default"}))
    assert svc.users.list_users(ADMIN, name="alice", domain_id=None, enabled=None, federated=True) == []
    asyncio.run(svc.users.delete_user(ADMIN, user.id))
    with svc.session() as s:
        assert s.get(User, user.id) is None


def test_role_assignment_query_refuses_contradictions() -> None:
    assert parse_query({"user.id": "u", "effective": ""}).effective
    assert not parse_query({"effective": "0"}).effective
    assert parse_query({"scope.OS-INHERIT:inherited_to": "projects"}).inherited is True
    assert parse_query({}).inherited is None
    bad: list[dict[str, Any]] = [
        {"scope.project.id": "p", "scope.domain.id": "d"}, {"scope.domain.id": "d", "scope.system": "all"},
        {"scope.project.id": "p", "scope.system": "all"}, {"user.id": "u", "group.id": "g"},
        {"effective": "1", "group.id": "g"},
        {"effective": "1", "scope.domain.id": "d", "scope.OS-INHERIT:inherited_to": "projects"},
    ]
    for params in bad:
        with pytest.raises(errors.BadRequest):
            parse_query(params)


def test_grant_rules_follow_the_path() -> None:
    assert grant_rule("create", Grant("user", "u", "project", "p")) == "identity:create_grant"
    assert grant_rule("list", Grant("group", "g", "domain", "d", True)) == "identity:list_grant"
    assert grant_rule("list", Grant("group", "g", "system")) == "identity:list_system_grants_for_group"
    assert grant_rule("revoke", Grant("user", "u", "system")) == "identity:revoke_system_grant_for_user"


def test_v2_auth_means_the_v3_auth() -> None:
    password = v2_as_v3({"passwordCredentials": {"username": "demo", "password": "pw"}, "tenantName": "demo"})
    assert password == {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"id": "default"}, "password": "pw"}}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}
    token = v2_as_v3({"token": {"id": "t"}})
    assert token == {"identity": {"methods": ["token"], "token": {"id": "t"}}, "scope": "unscoped"}
    assert v2_as_v3({"token": {"id": "t"}, "tenantId": "p"})["scope"] == {"project": {"id": "p"}}


def test_a_cancelled_write_still_drops_cached_validations_when_it_ends(svc: IdentityService) -> None:
    started, release = threading.Event(), threading.Event()
    before = svc.tokens.generation

    def slow(s: Session) -> None:
        started.set()
        release.wait(10)

    async def scenario() -> None:
        waiter = asyncio.ensure_future(svc.write(slow))
        await until(started.is_set, 10, "the write's transaction to start")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        # The transaction is still running: nothing may be dropped yet, or a validation cached now would
        # survive it.
        assert svc.tokens.generation == before
        release.set()
        await until(lambda: svc.tokens.generation == before + 1, 10, "the generation bump after the write")

    asyncio.run(scenario())
