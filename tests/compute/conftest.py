"""Compute test fixtures: a fake-driver compute agent on the live cloud's bus, and a small active image."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.livecloud import LiveCloud


@pytest.fixture(scope="session")
def fake_host(live: LiveCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A compute agent with the fake driver, so servers go ACTIVE through the real bus contract."""
    from tinystack.compute.agent import ComputeAgent
    from tinystack.compute.drivers.fake import FakeDriver

    host = f"tsfake-{secrets.token_hex(3)}"
    rt = live.cloud.runtime
    assert rt is not None
    agent = ComputeAgent(rt.bus, host, FakeDriver(), Path(tmp_path_factory.mktemp("agent")),
                         heartbeat_interval=2.0, resync_interval=5.0)
    live.call(agent.start())
    try:
        yield host
    finally:
        live.call(agent.stop(cleanup=True))


@pytest.fixture(scope="session")
def image_id(live: LiveCloud) -> str:
    conn = live.conn("admin")
    image = conn.image.create_image(name="compute-test-img", data=b"\0" * 4096, disk_format="raw",
                                    container_format="bare", visibility="public")
    return str(image.id)


@pytest.fixture(scope="session")
def compute(live: LiveCloud) -> Any:
    return live.cloud.runtime.services["compute"]  # type: ignore[union-attr]
