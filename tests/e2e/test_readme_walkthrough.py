"""The README's first session, run line by line against a fresh live cloud, as a new user would."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"


def session_commands() -> list[str]:
    """The shell lines of the code block under '## A first session'."""
    text = README.read_text()
    section = text.split("## A first session", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README has no shell block in 'A first session'"
    lines = []
    for line in block.group(1).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def test_readme_first_session(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path / "state")
    work = tmp_path / "work"
    work.mkdir()
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    ran = 0
    try:
        for line in session_commands():
            command, _, comment = line.partition("#")
            expect_failure = re.search(r"\b(4\d\d)\b", comment)
            if command.startswith("export "):
                name, _, value = command[len("export "):].strip().partition("=")
                env[name] = str(cloud.clouds_yaml) if name == "OS_CLIENT_CONFIG_FILE" else value
                continue
            if command.startswith(". "):  # activating the venv: PATH already has it
                continue
            for part in command.split("&&"):
                argv = shlex.split(part)
                proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=300)
                if expect_failure:
                    assert proc.returncode != 0 and expect_failure.group(1) in proc.stderr, (line, proc.stderr)
                else:
                    assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
                ran += 1
    finally:
        cloud.stop()
    assert ran >= 10
