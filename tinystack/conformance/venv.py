"""Tempest's own virtual environment: create it and pip-install Tempest into it, or reuse one that has it.

Tempest pins its own dependency set, so it never shares tinystack's environment.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tinystack.conformance.errors import HarnessError

DEFAULT_SPEC = "tempest"


@dataclass(frozen=True)
class TempestEnv:
    """A venv directory holding Tempest; its tools are found by name under ``bin``."""

    root: Path

    def bin(self, tool: str) -> Path:
        return self.root / "bin" / tool

    @property
    def python(self) -> Path:
        return self.bin("python")

    def has_tempest(self) -> bool:
        if not self.bin("tempest").exists() or not self.python.exists():
            return False
        probe = subprocess.run(
            [str(self.python), "-c", "import tempest, stestr, subunit, testtools"],
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0

    def tempest_version(self) -> str:
        out = subprocess.run(
            [str(self.python), "-c", "from importlib.metadata import version; print(version('tempest'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() or "unknown"


def ensure_tempest(root: Path, spec: str = DEFAULT_SPEC, python: str | None = None, upgrade: bool = False) -> TempestEnv:
    """Return a venv at ``root`` with Tempest installed, creating or installing only what is missing."""
    env = TempestEnv(root)
    if env.has_tempest() and not upgrade:
        return env
    if not env.python.exists():
        _run([python or sys.executable, "-m", "venv", str(root)], "create the Tempest venv")
    _run([str(env.python), "-m", "pip", "install", *(["--upgrade"] if upgrade else []), spec], f"install {spec}")
    if not env.has_tempest():
        raise HarnessError(f"{root}: Tempest was installed but cannot be imported")
    return env


def _run(argv: list[str], what: str) -> None:
    print(f"conformance: {what}: {' '.join(argv)}", file=sys.stderr, flush=True)
    result = subprocess.run(argv, check=False)
    if result.returncode != 0:
        raise HarnessError(f"could not {what} (exit {result.returncode})")
