"""Operator-facing behaviour: `tinystack up` as a process, key rotation, account lockout."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.livecloud import LiveCloud, isolated_node, remove_netns

pytestmark = [pytest.mark.dataplane, pytest.mark.e2e]

TINYSTACK = str(Path(sys.executable).with_name("tinystack"))


def _password_body(user: str, password: str, project: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        body["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": body}


def test_up_serves_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    bind = f"127.0.{random.randint(100, 250)}.{random.randint(2, 250)}"
    host, netns = isolated_node()
    ini = tmp_path / "tinystack.ini"
    ini.write_text(f"[DEFAULT]\nhost = {host}\n[network]\nexternal_netns = {netns}\n")
    proc = subprocess.Popen([TINYSTACK, "--config", str(ini), "up", "--state-dir", str(tmp_path / "state"),
                             "--bind", bind],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TINYSTACK_IDENTITY_PASSWORD_HASH_ROUNDS": "4"})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "tinystack ready"
        clouds = yaml.safe_load((tmp_path / "state" / "clouds.yaml").read_text())["clouds"]
        assert (tmp_path / "state" / "clouds.yaml").stat().st_mode & 0o777 == 0o600
        auth = clouds["admin"]["auth"]
        r = requests.post(auth["auth_url"] + "/auth/tokens", timeout=10,
                          json=_password_body("admin", auth["password"], "admin"))
        assert r.status_code == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            # communicate, not wait: a process whose stderr pipe fills up (64 KiB of warnings) blocks on its
            # next write and would never exit.
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR2)  # its state report, in its log, says what it is waiting for
            time.sleep(2)
            proc.kill()
            _, err = proc.communicate()
            log = (tmp_path / "state" / "log" / "tinystack.log").read_text()
            pytest.fail(f"`tinystack up` did not stop within 60 s of SIGTERM\nstderr:\n{err[-4000:]}\n"
                        f"log:\n{log[-30000:]}")
        finally:
            remove_netns(netns)
    assert proc.returncode == 0, err[-4000:]
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert host not in leftovers


def test_fernet_rotation_keeps_recent_tokens_valid(live: LiveCloud) -> None:
    admin = live.conn("admin").auth_token
    token = live.conn("demo").auth_token
    keys = live.cloud.config.state_dir / "fernet-keys"
    before = sorted(p.name for p in keys.iterdir())
    out = subprocess.run([TINYSTACK, "manage", "fernet-rotate", "--state-dir", str(live.cloud.config.state_dir)],
                         capture_output=True, text=True, check=True)
    assert "primary" in out.stdout
    assert sorted(p.name for p in keys.iterdir()) != before
    r = requests.get(live.url("identity") + "/auth/tokens", timeout=10,
                     headers={"X-Auth-Token": admin, "X-Subject-Token": token})
    assert r.status_code == 200
    fresh = live.conn("demo").auth_token  # issued with the new primary key
    assert fresh != token


def test_lockout_after_failed_attempts(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path, security_compliance__lockout_failure_attempts="2")
    try:
        demo_password = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]["demo"]["auth"]["password"]
        url = cloud.url("identity") + "/auth/tokens"
        for _ in range(2):
            assert requests.post(url, json=_password_body("demo", "wrong"), timeout=10).status_code == 401
        locked = requests.post(url, json=_password_body("demo", demo_password), timeout=10)
        assert locked.status_code == 401 and "locked" in locked.json()["error"]["message"]
    finally:
        cloud.stop()
