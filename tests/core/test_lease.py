"""Leases for singleton work on SQLite (unit tier) and PostgreSQL (db tier): one holder at a time, renewal,
takeover after expiry or release, and the periodic runner that works only while holding."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.databases import available, scratch_database
from tinystack.core.db import CORE_MIGRATIONS, Database
from tinystack.core.lease import Lease, Singleton, exclusive


class Clock:
    """Wall-clock time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingLease(Lease):
    tries = 0

    def acquire(self) -> bool:
        self.tries += 1
        return super().acquire()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.db)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'lease.db'}")
        database.migrate("core", CORE_MIGRATIONS)
        yield database
        database.dispose()
        return
    if not available("postgresql"):
        pytest.skip("no PostgreSQL on loopback")
    with scratch_database("postgresql") as url:
        database = Database(url)
        database.migrate("core", CORE_MIGRATIONS)
        yield database
        database.dispose()


def test_one_holder_then_takeover_after_expiry(db: Database) -> None:
    clock = Clock()
    a = Lease(db, "sweeper", ttl=30, holder="a", clock=clock)
    b = Lease(db, "sweeper", ttl=30, holder="b", clock=clock)
    assert a.acquire() and a.held
    assert not b.acquire() and not b.held
    clock.now += 20
    assert a.acquire()  # renewed: expires 30 s from now
    clock.now += 20
    assert not b.acquire() and b.current_holder() == "a"
    clock.now += 11  # a stopped renewing 31 s ago: expired
    assert not a.held
    assert b.acquire() and b.current_holder() == "b"
    assert not a.acquire()  # the old holder finds it taken
    b.release()
    assert not b.held and b.current_holder() is None
    assert a.acquire()  # released: no waiting for expiry
    assert Lease(db, "other", holder="b", clock=clock).acquire()  # leases are independent


def test_only_one_of_many_racing_threads_wins(db: Database) -> None:
    clock = Clock()
    leases = [Lease(db, "race", holder=f"h{i}", clock=clock) for i in range(6)]
    results: list[bool] = []
    barrier = threading.Barrier(len(leases))

    def take(lease: Lease) -> None:
        barrier.wait()
        results.append(lease.acquire())

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_singleton_runs_in_one_holder_and_moves_on_stop(db: Database) -> None:
    async def scenario() -> tuple[set[str], set[str]]:
        runs: list[str] = []
        first = asyncio.Event()
        moved = asyncio.Event()

        def work(name: str) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                runs.append(name)
                (moved if name == "b" else first).set()
            return run

        a = Singleton(Lease(db, "housekeeping", ttl=3, holder="a"), work("a"), interval=0.05)
        task_a = asyncio.create_task(a.run())
        await asyncio.wait_for(first.wait(), 10)
        b = Singleton(Lease(db, "housekeeping", ttl=3, holder="b"), work("b"), interval=0.05)
        task_b = asyncio.create_task(b.run())
        deadline = asyncio.get_running_loop().time() + 10
        while b.tries == 0:  # b has found the lease taken at least once
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        before = set(runs)
        task_a.cancel()  # stopping releases the lease; b takes over at its next try
        await asyncio.gather(task_a, return_exceptions=True)
        await asyncio.wait_for(moved.wait(), 10)
        task_b.cancel()
        await asyncio.gather(task_b, return_exceptions=True)
        return before, set(runs)

    before, after = asyncio.run(scenario())
    assert before == {"a"} and after == {"a", "b"}


def test_exclusive_waits_for_the_holder(db: Database) -> None:
    async def scenario() -> list[str]:
        order: list[str] = []
        inside = asyncio.Event()
        leave = asyncio.Event()

        leases = {name: CountingLease(db, "bootstrap", ttl=3, holder=name) for name in ("a", "b")}

        async def one(name: str) -> None:
            async with exclusive(leases[name], poll=0.05):
                order.append(f"{name} in")
                inside.set()
                await leave.wait()
                order.append(f"{name} out")

        first = asyncio.create_task(one("a"))
        await asyncio.wait_for(inside.wait(), 10)
        second = asyncio.create_task(one("b"))
        deadline = asyncio.get_running_loop().time() + 10
        while leases["b"].tries < 2:  # b found the lease taken, and again after waiting
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert order == ["a in"]  # b waits while a holds it
        leave.set()
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        return order

    assert asyncio.run(scenario()) == ["a in", "a out", "b in", "b out"]
