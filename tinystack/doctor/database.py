"""The database and the broker: reachable, and every service's schema at its Alembic head."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tinystack.config import Config
from tinystack.core.db import CORE_MIGRATIONS, Database
from tinystack.doctor.findings import Finding, error, info, ok

if TYPE_CHECKING:
    from tinystack.core.rabbitbus import RabbitBus

CHECK_DB = "database"
CHECK_BROKER = "broker"


def _redact(url: str) -> str:
    """The URL without its password, for the report."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, where = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{where}"


def connect(cfg: Config) -> tuple[Database | None, Finding]:
    """The database, or None with the finding that says why not."""
    url = cfg.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        # Connecting would create an empty database where the cloud expects its own.
        return None, error(CHECK_DB, f"no database at {url}: this state dir has never run a cloud",
                           "pass the cloud's --state-dir or --config (the one `tinystack up` uses), or start it")
    try:
        db = Database(url)
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return None, error(CHECK_DB, f"cannot reach the database {_redact(url)}: {type(exc).__name__}: {exc}",
                           "check [database] connection, that the server runs and accepts this host; "
                           "nothing else can be checked without it", _redact(url))
    return db, ok(CHECK_DB, f"database {_redact(url)} reachable", _redact(url))


def heads(engine: Engine, histories: Iterable[tuple[str, Path]]) -> list[Finding]:
    """Each service's schema version against the newest migration it ships."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    behind: list[Finding] = []
    count = 0
    with engine.connect() as conn:
        for service, location in histories:
            count += 1
            script = ScriptDirectory(str(location), version_locations=[str(location)])
            wanted = set(script.get_heads())
            context = MigrationContext.configure(conn, opts={"version_table": f"alembic_version_{service}"})
            current = set(context.get_current_heads())
            if current != wanted:
                behind.append(error(CHECK_DB, f"{service}: schema at {', '.join(sorted(current)) or 'nothing'}, "
                                    f"the code expects {', '.join(sorted(wanted))}",
                                    "run `tinystack manage db-sync` with this configuration (the API processes "
                                    "also migrate when they start)", service))
    return behind or [ok(CHECK_DB, f"all {count} schemas at their migration head")]


def histories() -> list[tuple[str, Path]]:
    from tinystack.registry import SERVICES

    return [("core", CORE_MIGRATIONS), *((s.name, s.migrations) for s in SERVICES if s.migrations is not None)]


async def broker(cfg: Config, timeout: float = 10.0) -> tuple[RabbitBus | None, Finding]:
    """A connection to the broker when ``[bus] transport_url`` names one (the caller closes it)."""
    url = cfg.get("bus", "transport_url")
    if not url.startswith("amqp"):
        return None, info(CHECK_BROKER, "no broker: the in-process bus (one process runs every service and agent)")
    from tinystack.core.rabbitbus import RabbitBus

    bus = RabbitBus(url, cfg.get("bus", "exchange") or "tinystack")
    try:
        await asyncio.wait_for(bus.connect(), timeout)
    except Exception as exc:
        await bus.close()
        return None, error(CHECK_BROKER, f"cannot reach the broker {_redact(url)}: {type(exc).__name__}: {exc}",
                           "check [bus] transport_url and that RabbitMQ runs and accepts this host", _redact(url))
    return bus, ok(CHECK_BROKER, f"broker {_redact(url)} reachable", _redact(url))
