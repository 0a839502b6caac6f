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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tier", action="append", default=[], choices=TIERS,
                     help="run only the tests of this tier (repeatable); scripts/test passes one per run")


def pytest_configure(config: pytest.Config) -> None:
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: the {tier} tier (see tests/conftest.py)")


def tier_of(item: pytest.Item) -> str:
    """The closest tier marker (a test's own over its module's); none: ``api`` with the ``live`` cloud, else ``unit``."""
    tier = next((m.name for m in item.iter_markers() if m.name in TIERS), None)
    if tier is None:
        tier = "api" if "live" in item.fixturenames else "unit"
    return tier


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong, keep, drop = [], [], []
    wanted = set(config.getoption("tier"))
    for item in items:
        tier = tier_of(item)
        if tier in ROOTLESS and item.get_closest_marker("privileged") is not None:
            wrong.append(f"{item.nodeid}: tier {tier} but marked privileged")
        (keep if not wanted or tier in wanted else drop).append(item)
    if wrong:
        raise pytest.UsageError("tests in a rootless tier that need root:\n" + "\n".join(wrong))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    livecloud.current_tier = tier_of(item)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    cloud = LiveCloud(Path(tmp_path_factory.mktemp("cloud")))
    try:
        yield cloud
    finally:
        cloud.stop()
