"""The README's first session, run as one shell script against a fresh live cloud, as a new user would:
identity, images, then a real QEMU guest reached over ssh through its floating IP, and a volume hot-plugged
into it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]

README = Path(__file__).resolve().parents[2] / "README.md"


def session_lines() -> list[str]:
    """The shell lines of the code block under '## A first session'."""
    text = README.read_text()
    section = text.split("## A first session", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README has no shell block in 'A first session'"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def as_script(lines: list[str], clouds_yaml: Path, netns: str) -> str:
    """One bash script: every line must succeed, except lines annotated '# 4xx', which must fail so."""
    out = ["set -euo pipefail",
           # The test's stand-in for the host's network is a namespace: ssh runs there.
           f'ssh() {{ ip netns exec {netns} ssh -o UserKnownHostsFile=/dev/null -o ConnectTimeout=20 "$@"; }}']
    for n, line in enumerate(lines):
        command, _, comment = line.partition("  #")
        if command.startswith("export OS_CLIENT_CONFIG_FILE="):
            command = f"export OS_CLIENT_CONFIG_FILE={clouds_yaml}"
        if command.startswith(". "):
            continue
        expected = re.search(r"\b(4\d\d)\b", comment)
        out.append(f"echo '>>> {n}: {command.strip()[:100]}'")
        if expected:
            out.append(f"if {command.strip()} 2>err.txt; then echo 'expected a failure'; exit 1; fi")
            out.append(f"grep -q {expected.group(1)} err.txt")
        else:
            out.append(command)
    return "\n".join(out) + "\n"


def test_readme_first_session(tmp_path: Path) -> None:
    # A fresh cloud of its own, not the shared guest cloud: the README is what a new user types into a new cloud,
    # with its fixed names (vm1, its key, volume and group) in demo, and the test checks that first session as is.
    cloud = LiveCloud(tmp_path / "state", compute__driver="qemu", guest__auto_build="true")
    work = tmp_path / "work"
    work.mkdir()
    try:
        cloud.wait_for_default_image()
        script = as_script(session_lines(), cloud.clouds_yaml, cloud.external_netns)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        lines = proc.stdout.strip().splitlines()
        assert "vm1" in lines, proc.stdout[-2000:]  # ssh ... hostname
        # cat /proc/partitions in the guest, after the volume was hot-plugged: a 1 GiB vdb.
        assert any(line.split()[-2:] == ["1048576", "vdb"] for line in lines if line.strip()), proc.stdout[-3000:]
        console = cloud.cli("console", "log", "show", "vm1", cloud="demo").stdout
        assert "hostname set to vm1" in console and "user-data ran on vm1" in console
    finally:
        cloud.stop()
