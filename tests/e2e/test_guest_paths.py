"""A real guest configured from a config drive through the API, and guests' isolation on the metadata path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]


def _wait_console(cloud: LiveCloud, name: str, marker: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        console = cloud.cli("console", "log", "show", name, cloud="demo").stdout
        if marker in console or time.monotonic() > deadline:
            return console
        time.sleep(2)


def test_config_drive_server(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path / "state", compute__driver="qemu", guest__auto_build="true")
    try:
        cloud.wait_for_default_image()
        script = tmp_path / "ud.sh"
        script.write_text('#!/bin/sh\necho "cd-user-data on $(hostname)"\n')
        cloud.cli("keypair", "create", "--public-key", str(_keyfile(tmp_path)), "cdkey", cloud="demo")
        server = cloud.cli_json("server", "create", "--image", "cirros-tiny", "--flavor", "m1.tiny", "--network",
                                "private", "--key-name", "cdkey", "--config-drive", "true", "--user-data",
                                str(script), "--wait", "vmcd", cloud="demo")
        assert server["status"] == "ACTIVE"
        console = _wait_console(cloud, "vmcd", "cd-user-data on vmcd")
        assert "config drive" in console.lower(), console[-3000:]
        assert "hostname set to vmcd" in console and "cd-user-data on vmcd" in console, console[-3000:]
        cloud.cli("server", "delete", "--wait", "vmcd", cloud="demo")
    finally:
        cloud.stop()


def _keyfile(tmp_path: Path) -> Path:
    import subprocess

    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.with_suffix(".pub")
