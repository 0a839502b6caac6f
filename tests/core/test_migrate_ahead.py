"""A database migrated by a newer release: an older API process serves on it without migrating (a rolling
upgrade, docs/deployment.md); the older release's ``db-sync`` refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tinystack.compute.service import MIGRATIONS
from tinystack.core.db import SchemaAhead, migrate

NEXT = '''import sqlalchemy as sa
from alembic import op

revision = "compute_9901"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("compute_instance", sa.Column("newer", sa.String(8), nullable=True))
'''


def test_an_older_release_on_a_newer_schema(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        migrate(engine, "compute", MIGRATIONS)
        newer = tmp_path / "newer"
        shutil.copytree(MIGRATIONS, newer, ignore=shutil.ignore_patterns("__pycache__"))
        (head,) = ScriptDirectory(str(newer), version_locations=[str(newer)]).get_heads()
        (newer / "9901_newer.py").write_text(NEXT.replace("{head}", head))
        migrate(engine, "compute", newer)
        assert "newer" in {c["name"] for c in inspect(engine).get_columns("compute_instance")}
        with pytest.raises(SchemaAhead, match="compute_9901"):
            migrate(engine, "compute", MIGRATIONS)
        migrate(engine, "compute", MIGRATIONS, ahead_ok=True)  # serves as it is
        migrate(engine, "compute", newer)  # the newer release: already at head
    finally:
        engine.dispose()
