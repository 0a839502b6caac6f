"""The compare-and-swap generation bump and the level-triggered publisher (tinystack/core/desired.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from tests.databases import available, scratch_database
from tinystack.core import desired, errors
from tinystack.core.db import make_engine


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "desired_test_thing"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    published_generation: Mapped[int] = mapped_column(Integer, default=0)


def factory(url: str) -> sessionmaker:  # type: ignore[type-arg]
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with sessionmaker(engine)() as s, s.begin():
        s.add(Thing(id="t1", state="active", generation=1))
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def sqlite(tmp_path: Path) -> sessionmaker:  # type: ignore[type-arg]
    return factory(f"sqlite:///{tmp_path}/cas.db")


def race(sessions: sessionmaker) -> list[bool]:  # type: ignore[type-arg]
    """Two sessions read generation 1, then both try to move it: the bumps run one after the other (SQLite
    takes one writer at a time, PostgreSQL's second UPDATE waits for the first's row lock and re-checks)."""
    a, b = sessions(), sessions()
    try:
        a.begin()
        b.begin()
        ga, gb = a.get(Thing, "t1").generation, b.get(Thing, "t1").generation  # type: ignore[union-attr]
        assert ga == gb == 1
        won_a = desired.bump(a, Thing, "t1", ga, {"state": "stopping"}, guard={"state": "active"})
        results: list[bool] = []
        # b's UPDATE blocks on PostgreSQL until a commits: run it in a thread and commit a meanwhile.
        worker = threading.Thread(target=lambda: results.append(
            desired.bump(b, Thing, "t1", gb, {"state": "rebooting"}, guard={"state": "active"})))
        if sessions.kw["bind"].dialect.name == "sqlite":
            a.commit()
            worker.start()
        else:
            worker.start()
            worker.join(0.3)
            a.commit()
        worker.join(10)
        b.commit()
        return [won_a, results[0]]
    finally:
        a.close()
        b.close()


def test_two_writers_one_wins_on_sqlite(sqlite: sessionmaker) -> None:  # type: ignore[type-arg]
    assert race(sqlite) == [True, False]
    with sqlite() as s:
        row = s.get(Thing, "t1")
        assert row is not None and (row.generation, row.state) == (2, "stopping")


@pytest.mark.db
@pytest.mark.skipif(not available("postgresql"), reason="no PostgreSQL on 127.0.0.1:5432")
def test_two_writers_one_wins_on_postgresql() -> None:
    with scratch_database("postgresql") as url:
        sessions = factory(url)
        try:
            assert race(sessions) == [True, False]
            with sessions() as s:
                row = s.get(Thing, "t1")
                assert row is not None and (row.generation, row.state) == (2, "stopping")
        finally:
            sessions.kw["bind"].dispose()


def test_guard_refuses_a_state_that_moved_without_a_generation(sqlite: sessionmaker) -> None:  # type: ignore[type-arg]
    with sqlite() as s, s.begin():
        row = s.get(Thing, "t1")
        assert row is not None
        row.state = "error"  # an agent report: the state moves, the generation does not
    with sqlite() as s, s.begin():
        assert not desired.bump(s, Thing, "t1", 1, {"state": "stopping"}, guard={"state": ("active", None)})
        assert desired.bump(s, Thing, "t1", 1, {"state": "stopping"}, guard={"state": ("active", "error")})


def test_bump_updates_the_session_copy_and_retry_gives_409(sqlite: sessionmaker) -> None:  # type: ignore[type-arg]
    with sqlite() as s, s.begin():
        row = s.get(Thing, "t1")
        assert row is not None
        assert desired.bump_or_lose(s, Thing, "t1", row.generation, {"state": "x"}) == 2
        assert (row.generation, row.state) == (2, "x")  # no reload needed
        assert row not in s.dirty

    def stale() -> None:
        with sqlite() as s, s.begin():
            desired.bump_or_lose(s, Thing, "t1", 1)  # always behind

    with pytest.raises(errors.Conflict):
        desired.retry(stale, attempts=3)


def test_mark_published_never_goes_back(sqlite: sessionmaker) -> None:  # type: ignore[type-arg]
    with sqlite() as s, s.begin():
        assert desired.mark_published(s, Thing, "t1", 3)
        assert not desired.mark_published(s, Thing, "t1", 2)  # an older publish finishing late
        assert s.get(Thing, "t1").published_generation == 3  # type: ignore[union-attr]


@pytest.fixture
def no_hook() -> Iterator[None]:
    yield
    desired.before_publish = None


def test_publisher_recovers_a_crash_from_its_work_list(no_hook: None) -> None:
    """The hint is lost (a simulated crash before the publish); the next pass reads the key from the work list."""
    published: list[str] = []
    pending = {"k1"}

    async def publish(key: str) -> None:
        published.append(key)
        pending.discard(key)

    async def work_list() -> list[str]:
        return sorted(pending)

    crashes: list[str] = []

    def hook(service: str, key: str) -> None:
        if not crashes:
            crashes.append(key)
            raise desired.SimulatedCrash

    async def scenario() -> None:
        desired.before_publish = hook
        pub = desired.Publisher("test", publish, work_list, interval=0.05)
        await pub.start()  # the first pass at start: crashes before publishing k1
        try:
            for _ in range(200):
                if published:
                    break
                await asyncio.sleep(0.01)
        finally:
            await pub.stop()

    asyncio.run(scenario())
    assert crashes == ["k1"] and published == ["k1"]
