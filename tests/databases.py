"""Scratch PostgreSQL and MySQL databases on loopback for tests that prove the schema and rules there."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, text

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306",
}


def available(kind: str) -> bool:
    try:
        engine = create_engine(f"{SERVERS[kind]}/{'postgres' if kind == 'postgresql' else 'mysql'}")
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """A new empty database; dropped afterwards. Yields its URL."""
    name = f"tinystack_test_{uuid.uuid4().hex[:12]}"
    admin_db = "postgres" if kind == "postgresql" else "mysql"
    admin = create_engine(f"{SERVERS[kind]}/{admin_db}", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        suffix = "?charset=utf8mb4" if kind == "mysql" else ""
        yield f"{SERVERS[kind]}/{name}{suffix}"
    finally:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
