"""The database: SQLAlchemy engine and sessions, per-service Alembic migrations, new ids."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, MetaData, case, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

log = logging.getLogger(__name__)

# Core's own tables (leases), migrated before any service's: one more Alembic history, ``alembic_version_core``.
CORE_MIGRATIONS = Path(__file__).parent / "migrations"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """One engine and its session factory. ``session()`` commits on success and rolls back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with self._factory() as s, s.begin():
            yield s

    def migrate(self, service: str, location: Path, *, ahead_ok: bool = False) -> None:
        migrate(self.engine, service, location, ahead_ok=ahead_ok)

    def dispose(self) -> None:
        self.engine.dispose()


class SchemaAhead(RuntimeError):
    """The database holds a revision this code's history does not have: a newer release migrated it."""


def migrate(engine: Engine, service: str, location: Path, *, ahead_ok: bool = False) -> None:
    """Upgrade one service's tables to head; each service keeps its own Alembic version table.

    A database already at a revision this code does not know was expanded by a newer release
    (docs/deployment.md): an API process of the older release, restarted during a rolling upgrade, serves on
    it as it is (``ahead_ok``); ``db-sync`` of the older release refuses (``SchemaAhead``)."""
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(location))
    script = ScriptDirectory(str(location), version_locations=[str(location)])
    table = f"alembic_version_{service}"
    with engine.connect() as conn:
        current = MigrationContext.configure(conn, opts={"version_table": table}).get_current_heads()
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        if not ahead_ok:
            raise SchemaAhead(f"{service}: the database is at {', '.join(unknown)}, which this release does not "
                              "know: a newer release has migrated it")
        log.warning("%s: the database is at %s, ahead of this release: serving on it without migrating",
                    service, ", ".join(unknown))
        return

    def upgrade(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs("head", rev)

    with EnvironmentContext(cfg, script, fn=upgrade, destination_rev="head") as env, engine.begin() as conn:
        env.configure(connection=conn, version_table=table, render_as_batch=True)
        with env.begin_transaction():
            env.run_migrations()


def new_id() -> str:
    """A new resource id: a UUID4 as 32 hex digits (Keystone's form; services add dashes where OpenStack does)."""
    import uuid

    return uuid.uuid4().hex


def greatest(column: Any, value: Any) -> ColumnElement[Any]:
    """``column`` raised to at least ``value``, computed by the database in the UPDATE itself (SQLite, PostgreSQL
    and MySQL alike), so that two writers with different values both end at the larger one."""
    return case((column < value, value), else_=column)
