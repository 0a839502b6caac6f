"""The README's object storage section, run as one shell script as a user types it: openstackclient, then
``swift`` with a token, a public container read by plain curl, a TempURL, and a segmented upload."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.api, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"


def section_lines() -> list[str]:
    section = README.read_text().split("## Object storage", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README has no shell block in 'Object storage'"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_readme_object_storage_section(live: LiveCloud, tmp_path: Path) -> None:
    # The section's user is a fresh project of its own (named in clouds.yaml), so the test's container does not
    # meet other tests' objects; the port is the live cloud's instead of 8080.
    cloud = live.project_conn("readme-obj").auth["project_name"]
    base = live.url("object").split("/v1", 1)[0]
    lines = [line.replace("--os-cloud demo", f"--os-cloud {cloud}").replace("http://127.0.0.1:8080", base)
             for line in section_lines()]
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "OS_CLIENT_CONFIG_FILE": str(live.clouds_yaml)}
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = proc.stdout.splitlines()
    assert out.count("hello, objects") == 2, proc.stdout  # plain curl on the public container, then the TempURL
    assert any("Content Length: 3000000" in line for line in out), proc.stdout
    assert any("X-Static-Large-Object: True" in line for line in out), proc.stdout  # swift picks SLO from /info
    conn = live.conn(cloud)
    assert conn.object_store.download_object("big.bin", container="photos") == (tmp_path / "big.bin").read_bytes()
