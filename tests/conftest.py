"""Shared fixtures (one live cloud per test session, and helpers to reach it) and the test tiers.

Every test belongs to exactly one tier, a marker that ``scripts/test`` selects by (docs/testing.md):
``unit`` (no cloud), ``api`` (in-process cloud, fake drivers, no root), ``dataplane`` (namespaces and the
real network driver), ``guest`` (real QEMU guests), ``db`` (PostgreSQL, MariaDB, RabbitMQ), ``conformance``
(Tempest) and ``browser``. A module or test says its tier with ``pytestmark``/a mark; one that says none is
``api`` when it uses the ``live`` cloud and ``unit`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import livecloud
from tests.livecloud import LiveCloud

TIERS = ("unit", "api", "dataplane", "db", "guest", "conformance", "browser")
# Tiers whose tests may run as an ordinary user: scripts/test --fast.
ROOTLESS = ("unit", "api")


def pytest_configure(config: pytest.Config) -> None:
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: the {tier} tier (see tests/conftest.py)")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = []
    for item in items:
        # The closest tier marker wins: a test's own over its module's.
        tier = next((m.name for m in item.iter_markers() if m.name in TIERS), None)
        if tier is None:
            tier = "api" if "live" in item.fixturenames else "unit"
            item.add_marker(tier)
        if tier in ROOTLESS and item.get_closest_marker("privileged") is not None:
            wrong.append(f"{item.nodeid}: tier {tier} but marked privileged")
    if wrong:
        raise pytest.UsageError("tests in a rootless tier that need root:\n" + "\n".join(wrong))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    livecloud.current_tier = next((m.name for m in item.iter_markers() if m.name in TIERS), None)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    cloud = LiveCloud(Path(tmp_path_factory.mktemp("cloud")))
    try:
        yield cloud
    finally:
        cloud.stop()
