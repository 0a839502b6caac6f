"""``tinystack storage``: a storage node alone builds its rings from its devices on the first start, serves the
account, container and object servers on the ports its rings keep, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tinystack.object.ring import Ring

pytestmark = pytest.mark.api

ROOT = Path(__file__).resolve().parents[2]


def start(state: Path, ini: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from tinystack.cli import main; sys.exit(main())",
                             "--config", str(ini), "storage", "--state-dir", str(state)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("tinystack storage ready"), line
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_storage_node_alone(tmp_path: Path) -> None:
    ini = tmp_path / "storage.ini"
    ini.write_text("[object]\naccount_port = 0\ncontainer_port = 0\nobject_port = 0\npart_power = 4\n")
    state = tmp_path / "state"
    proc = start(state, ini)
    try:
        rings = state / "object" / "rings"
        assert {p.name for p in rings.glob("*.ring")} == {"account.ring", "container.ring", "object.ring", "object-1.ring"}
        ring = Ring.load(rings / "account.ring")
        devs = [d for d in ring.devs if d is not None]
        assert sorted(d.device for d in devs) == ["d1", "d2", "d3"] and len({d.zone for d in devs}) == 3
        dev = devs[0]
        base = f"http://{dev.ip}:{dev.port}/{dev.device}/0/AUTH_x"
        assert requests.put(base, headers={"X-Timestamp": "1700000000.00000"}, timeout=10).status_code == 201
        assert requests.head(base, timeout=10).headers["X-Account-Container-Count"] == "0"
        assert requests.put(f"http://{dev.ip}:{dev.port}/nodev/0/AUTH_x", headers={"X-Timestamp": "1700000000.00000"},
                            timeout=10).status_code == 507
        ports = {d.port for d in devs}
    finally:
        stop(proc)
    # A second start keeps the rings and their ports.
    proc = start(state, ini)
    try:
        assert {d.port for d in Ring.load(state / "object" / "rings" / "account.ring").devs if d is not None} == ports
        assert requests.head(base, timeout=10).status_code == 204
    finally:
        stop(proc)
