"""A placement service on its own SQLite file, for rule tests that need no HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinystack import config
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.placement.service import MIGRATIONS, PlacementService


@pytest.fixture
def placement(tmp_path: Path) -> PlacementService:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
    db = Database(f"sqlite:///{tmp_path}/placement.db")
    db.migrate("placement", MIGRATIONS)
    return PlacementService(cfg, db, PolicyEngine(None))
