"""The service base (tinystack/core/service.py): retried writes off the event loop, policy, elevated contexts."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from tinystack.core import errors, log
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceBase, acting_for, elevated, transient

MEMBER = RequestContext(user_id="u1", project_id="p1", roles=("member", "reader"), token="tok")


@pytest.fixture
def svc(tmp_path: Path) -> ServiceBase:
    db = Database(f"sqlite:///{tmp_path / 'base.db'}")
    with db.session() as s:
        s.execute(text("CREATE TABLE counter (n INTEGER)"))
        s.execute(text("INSERT INTO counter VALUES (0)"))
    policy = PolicyEngine()
    policy.register_defaults({"thing:admin": "role:admin", "thing:own": "project_id:%(project_id)s"})
    return ServiceBase(db, policy, {"other": object()})


def locked() -> OperationalError:
    return OperationalError("UPDATE counter", {}, Exception("database is locked"))


def bump(s: Session) -> int:
    s.execute(text("UPDATE counter SET n = n + 1"))
    return int(s.execute(text("SELECT n FROM counter")).scalar_one())


def count(svc: ServiceBase) -> int:
    with svc.session() as s:
        return int(s.execute(text("SELECT n FROM counter")).scalar_one())


def test_write_retries_a_transient_error_then_commits_once(svc: ServiceBase) -> None:
    calls: list[str] = []

    def fn(s: Session) -> int:
        calls.append(threading.current_thread().name)
        n = bump(s)
        if len(calls) == 1:
            raise locked()  # the first attempt's update is rolled back with it
        return n

    async def main() -> int:
        return await svc.write(fn)

    assert asyncio.run(main()) == 1
    assert len(calls) == 2
    assert count(svc) == 1
    # Off the event loop: the transaction ran in a worker thread, not the loop's.
    assert threading.main_thread().name not in calls


def test_write_gives_up_after_its_attempts(svc: ServiceBase) -> None:
    calls = 0

    def fn(s: Session) -> None:
        nonlocal calls
        calls += 1
        bump(s)
        raise locked()

    with pytest.raises(OperationalError):
        asyncio.run(svc.write(fn, attempts=3))
    assert calls == 3
    assert count(svc) == 0


def test_a_permanent_error_is_not_retried(svc: ServiceBase) -> None:
    calls = 0

    def fn(_s: Session) -> None:
        nonlocal calls
        calls += 1
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(IntegrityError):
        svc.retrying(fn)
    assert calls == 1


def test_transient() -> None:
    assert transient(locked())
    assert transient(OperationalError("x", {}, Exception("Deadlock found when trying to get lock")))
    assert not transient(OperationalError("x", {}, Exception("no such table: counter")))
    assert not transient(ValueError("database is locked"))


def test_enforce_raises_forbidden_and_allowed_says_why_not(svc: ServiceBase) -> None:
    with pytest.raises(errors.Forbidden) as info:
        svc.enforce(MEMBER, "thing:admin")
    assert info.value.status == 403
    assert not svc.allowed(MEMBER, "thing:admin")
    # Without a target the rule sees the caller's own project; with one, that target.
    svc.enforce(MEMBER, "thing:own")
    assert not svc.allowed(MEMBER, "thing:own", {"project_id": "p2"})
    svc.enforce(elevated(MEMBER), "thing:admin")


def test_elevated_keeps_user_project_and_request_id() -> None:
    token = log.request_id.set("req-1")
    try:
        admin = elevated(MEMBER)
    finally:
        log.request_id.reset(token)
    assert admin.is_admin
    assert (admin.user_id, admin.project_id, admin.token) == ("u1", "p1", "tok")
    assert admin.request_id == "req-1"
    assert admin.creds()["project_id"] == "p1"
    assert set(admin.roles) == {"admin", "member", "reader"}
    assert not MEMBER.is_admin  # the caller's own context is untouched
    # A context already made for a request keeps that request's id, wherever it is elevated again.
    assert elevated(admin).request_id == "req-1"


def test_acting_for_an_owner_outside_a_request() -> None:
    ctx = acting_for("u2", "p2")
    assert (ctx.user_id, ctx.project_id, ctx.roles) == ("u2", "p2", ("admin", "member", "reader"))
    assert ctx.request_id is None


def test_service_lookup(svc: ServiceBase) -> None:
    assert svc.has("other") and not svc.has("missing")
    assert svc.service("other") is not None
    with pytest.raises(errors.ServiceUnavailable):
        svc.service("missing")
