"""The split roles' rules (unit tier): what each role's cloud runs, ``--services`` parsing, the shared database
and broker a split process insists on, and singletons left out in the ``api`` role's context."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tinystack import config
from tinystack.core.db import CORE_MIGRATIONS, Database
from tinystack.core.lease import SINGLETONS, Lease, Singleton
from tinystack.roles import RoleError, check_split, cloud_for, parse_services


def cfg(tmp_path: Path, **values: str) -> config.Config:
    return config.load(None, environ={}, overrides={"state_dir": str(tmp_path), **values})


def test_parse_services() -> None:
    assert parse_services(None) is None
    assert parse_services("compute, image") == frozenset({"compute", "image"})
    with pytest.raises(RoleError, match=r"unknown service.*nova"):
        parse_services("compute,nova")
    with pytest.raises(RoleError, match="none given"):
        parse_services(" , ")


def test_split_roles_need_a_shared_database_and_broker(tmp_path: Path) -> None:
    with pytest.raises(RoleError, match="transport_url"):
        check_split(cfg(tmp_path), "api")
    with pytest.raises(RoleError, match="database"):
        check_split(cfg(tmp_path, bus__transport_url="amqp://x/"), "conductor")
    check_split(cfg(tmp_path, bus__transport_url="amqp://x/", database__connection="postgresql://db/t"), "api")


def test_what_each_role_runs(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    up, api, conductor = cloud_for("up", c), cloud_for("api", c, frozenset({"compute"})), cloud_for("conductor", c)
    assert up.agents and up.serve is None and up.singletons and up.bootstrap
    assert not api.agents and api.serve == {"compute"} and not api.singletons and api.bootstrap
    assert not conductor.agents and conductor.serve == frozenset() and conductor.singletons
    assert not conductor.bootstrap
    assert [s.name for s in api.services] == [s.name for s in up.services]  # every service is built in each
    with pytest.raises(RoleError):
        cloud_for("scheduler", c)


def test_singletons_off_in_an_api_context(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'lease.db'}")
    db.migrate("core", CORE_MIGRATIONS)
    ran: list[str] = []

    async def work() -> None:
        ran.append("work")

    async def main() -> None:
        token = SINGLETONS.set(False)
        try:
            off = asyncio.get_running_loop().create_task(Singleton(Lease(db, "s", ttl=3), work, 0.01).run())
        finally:
            SINGLETONS.reset(token)
        await asyncio.wait_for(off, 2)  # returns at once, never taking the lease
        assert Lease(db, "s").current_holder() is None and not ran
        on = asyncio.get_running_loop().create_task(Singleton(Lease(db, "s", ttl=3), work, 0.01).run())
        while not ran:
            await asyncio.sleep(0.01)
        on.cancel()
        await asyncio.gather(on, return_exceptions=True)

    asyncio.run(main())
    db.dispose()
