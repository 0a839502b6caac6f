"""Shared fixtures: one live cloud per test session, and helpers to reach it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    cloud = LiveCloud(Path(tmp_path_factory.mktemp("cloud")))
    try:
        yield cloud
    finally:
        cloud.stop()
