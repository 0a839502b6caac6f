"""Console tokens: random and stored hashed, single-use (also when two consumers race), expiring, and bound to
the instance and console type they were issued for."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from tinystack.config import load
from tinystack.console import settings, tokens
from tinystack.console.models import ConsoleToken
from tinystack.console.service import MIGRATIONS
from tinystack.core.db import Database

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'console.db'}")
    database.migrate("console", MIGRATIONS)
    return database


def issue(db: Database, instance_id: str = "inst-a", kind: str = "novnc", ttl: float = 600, now: float = NOW) -> str:
    with db.session() as s:
        return tokens.issue(s, instance_id, kind, ttl, now)


def consume(db: Database, token: str, now: float = NOW) -> tokens.Grant:
    with db.session() as s:
        return tokens.consume(s, token, now)


def test_token_is_random_and_only_its_hash_is_kept(db: Database) -> None:
    a, b = issue(db), issue(db)
    assert a != b and len(a) >= 40
    with db.session() as s:
        hashes = set(s.scalars(select(ConsoleToken.token_hash)))
    assert hashes == {tokens.digest(a), tokens.digest(b)} and a not in hashes


def test_single_use(db: Database) -> None:
    token = issue(db)
    assert consume(db, token) == tokens.Grant("inst-a", "novnc")
    with pytest.raises(tokens.TokenRefused):
        consume(db, token)


def test_racing_consumers_one_wins(db: Database) -> None:
    token = issue(db)
    results: list[object] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        try:
            results.append(consume(db, token))
        except tokens.TokenRefused as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, tokens.Grant) for r in results) == 1, results


def test_expiry(db: Database) -> None:
    token = issue(db, ttl=10)
    with pytest.raises(tokens.TokenRefused):
        consume(db, token, now=NOW + 11)
    # One still inside its time works.
    fresh = issue(db, ttl=10)
    assert consume(db, fresh, now=NOW + 9).instance_id == "inst-a"


def test_bound_to_its_instance_and_type(db: Database) -> None:
    vnc_a = issue(db, "inst-a", "novnc")
    serial_b = issue(db, "inst-b", "serial")
    assert consume(db, serial_b) == tokens.Grant("inst-b", "serial")
    assert consume(db, vnc_a) == tokens.Grant("inst-a", "novnc")


def test_unknown_and_malformed_tokens_refused(db: Database) -> None:
    issue(db)
    for bad in ("", "x" * 300, "not-a-token", "' OR 1=1 --"):
        with pytest.raises(tokens.TokenRefused):
            consume(db, bad)


def test_spent_tokens_are_swept_by_later_issues(db: Database) -> None:
    old = issue(db, ttl=1)
    issue(db, now=NOW + tokens.KEEP_SPENT + 10)
    with db.session() as s:
        assert s.get(ConsoleToken, tokens.digest(old)) is None


def test_settings() -> None:
    cfg = load(environ={})
    assert settings.load(cfg) == settings.ConsoleSettings(token_ttl=600.0, base_url="")
    cfg.set("console", "token_ttl", "0")
    with pytest.raises(ValueError, match="token_ttl"):
        settings.load(cfg)
    cfg.set("console", "token_ttl", "30")
    cfg.set("console", "base_url", "https://console.example.org/")
    cfg.set("console", "allowed_origins", "Dash.example.org, ,other.example.org")
    assert settings.load(cfg) == settings.ConsoleSettings(30.0, "https://console.example.org",
                                                          frozenset({"dash.example.org", "other.example.org"}))
    cfg.set("console", "bogus", "1")
    with pytest.raises(ValueError, match="bogus"):
        settings.load(cfg)
