"""The network agent's metadata proxies sign with the secret the metadata API checks: ``[metadata] secret_file`` when
set (a split cloud shares one file), else the one in the state dir (one process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinystack import config
from tinystack.network import agent_settings


def test_metadata_secret_from_the_metadata_section(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "metadata-secret"
    cfg = config.load(None, environ={"TINYSTACK_METADATA_SECRET_FILE": str(shared)},
                      overrides={"state_dir": str(tmp_path / "node"), "host": "node1"})
    assert agent_settings.load(cfg).metadata_secret == shared


def test_metadata_secret_defaults_to_the_state_dir(tmp_path: Path) -> None:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path), "host": "node1"})
    assert agent_settings.load(cfg).metadata_secret == tmp_path / "metadata-secret"


def test_metadata_upstream_puts_a_relay_between_proxies_and_api(tmp_path: Path) -> None:
    cfg = config.load(None, environ={"TINYSTACK_METADATA_UPSTREAM": "http://192.0.2.10:8775"},
                      overrides={"state_dir": str(tmp_path), "host": "node1"})
    assert agent_settings.load(cfg).metadata_upstream == "http://192.0.2.10:8775"
    assert agent_settings.load(config.load(None, environ={}, overrides={"state_dir": str(tmp_path),
                                                                        "host": "node1"})).metadata_upstream == ""
    bad = config.load(None, environ={"TINYSTACK_METADATA_UPSTREAM": "/run/metadata.sock"},
                      overrides={"state_dir": str(tmp_path), "host": "node1"})
    with pytest.raises(ValueError, match="upstream"):
        agent_settings.load(bad)
