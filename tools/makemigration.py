"""Write an Alembic revision for one service from the difference between its models and its migrations.

Usage: python tools/makemigration.py <service> "<message>"
It upgrades a scratch SQLite database to the service's current head, compares it with the models and
renders the operations; review the file before committing it.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from pathlib import Path

from alembic.autogenerate import produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tinystack.core.db import Base, make_engine, migrate


def main(service: str, message: str) -> None:
    models = importlib.import_module(f"tinystack.{service}.models")
    location = Path(importlib.import_module(f"tinystack.{service}").__file__ or "").parent / "migrations"
    location.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.db")
        script = ScriptDirectory(str(location), version_locations=[str(location)])
        head = script.get_current_head()
        if head is not None:
            migrate(engine, service, location)
        names = {t.name for t in models.TABLES}
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "include_name": lambda name, kind, _p: kind != "table" or name in names,
                "render_as_batch": True,
            })
            ops = produce_migrations(ctx, Base.metadata)
        upgrade = render_python_code(ops.upgrade_ops, render_as_batch=True)
        downgrade = render_python_code(ops.downgrade_ops, render_as_batch=True)
    number = len(list(script.walk_revisions())) + 1
    rev = f"{service}_{number:04d}"
    slug = "_".join(message.lower().split())[:40]
    path = location / f"{number:04d}_{slug}.py"
    path.write_text(
        f'"""{message}"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f'revision = "{rev}"\ndown_revision = {head!r}\nbranch_labels = None\ndepends_on = None\n'
        f"# created {time.strftime('%Y-%m-%d')}\n\n\n"
        f"def upgrade() -> None:\n{upgrade}\n\n\ndef downgrade() -> None:\n{downgrade}\n"
    )
    print(path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
