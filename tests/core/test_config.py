"""Settings: defaults, INI file, environment overrides, unknown keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinystack import config


def test_precedence(tmp_path: Path) -> None:
    ini = tmp_path / "t.ini"
    ini.write_text("[DEFAULT]\nbind = 10.9.9.9\n[token]\nexpiration = 60\n[ports]\nidentity = 5001\n")
    cfg = config.load(ini, environ={"TINYSTACK_TOKEN_EXPIRATION": "120", "TINYSTACK_STATE_DIR": str(tmp_path)})
    assert cfg.bind == "10.9.9.9"
    assert cfg.get_int("token", "expiration") == 120
    assert cfg.port("identity") == 5001
    assert cfg.port("image") == 9292
    assert cfg.database_url == f"sqlite:///{tmp_path / 'tinystack.db'}"


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    ini = tmp_path / "t.ini"
    ini.write_text("[token]\nexpirashun = 60\n")
    with pytest.raises(ValueError, match="unknown setting"):
        config.load(ini, environ={})


def test_service_sections_are_kept_for_the_service(tmp_path: Path) -> None:
    ini = tmp_path / "t.ini"
    ini.write_text("[image]\nstores = file,fast\n")
    cfg = config.load(ini, environ={})
    assert cfg.values["image"] == {"stores": "file,fast"}


def test_environment_sets_a_service_key_the_file_does_not_name(tmp_path: Path) -> None:
    """A node's own settings beside the shared file (docs/deployment.md): ``TINYSTACK_NETWORK_UNDERLAY_IP``."""
    ini = tmp_path / "t.ini"
    ini.write_text("[network]\nvxlan_port = 4789\n")
    cfg = config.load(ini, environ={"TINYSTACK_NETWORK_UNDERLAY_IP": "192.0.2.21",
                                    "TINYSTACK_COMPUTE_LIVE_MIGRATION_INBOUND_ADDR": "192.0.2.21",
                                    "TINYSTACK_NETWORK_VXLAN_PORT": "4790", "TINYSTACK_UNRELATED_THING": "x"})
    assert cfg.values["network"] == {"vxlan_port": "4790", "underlay_ip": "192.0.2.21"}
    assert cfg.values["compute"] == {"live_migration_inbound_addr": "192.0.2.21"}
    assert "unrelated" not in cfg.values and "unrelated_thing" not in cfg.values["DEFAULT"]
