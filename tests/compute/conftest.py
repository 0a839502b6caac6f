"""Compute test fixtures: a fake-driver compute agent on the live cloud's bus, and a small active image."""

from __future__ import annotations

from typing import Any

import pytest

from tests.livecloud import LiveCloud


@pytest.fixture(scope="session")
def fake_host(live: LiveCloud) -> str:
    """The live cloud's own compute agent, which test clouds run with the fake driver: servers go ACTIVE
    through the real bus contract, and it is the only host, so tests know where servers land."""
    assert live.cloud.config.values["compute"]["driver"] == "fake"
    return live.host


@pytest.fixture(scope="session")
def image_id(live: LiveCloud) -> str:
    conn = live.conn("admin")
    image = conn.image.create_image(name="compute-test-img", data=b"\0" * 4096, disk_format="raw",
                                    container_format="bare", visibility="public")
    return str(image.id)


@pytest.fixture(scope="session")
def compute(live: LiveCloud) -> Any:
    return live.cloud.runtime.services["compute"]  # type: ignore[union-attr]
