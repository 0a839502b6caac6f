"""Find a Tempest venv already on this machine, for the tests that need one (they skip without)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CANDIDATES = (os.environ.get("TINYSTACK_TEMPEST_VENV", ""), "/var/lib/tinystack/tempest-venv", "/tmp/tempest-venv")


def find_tempest_venv() -> Path | None:
    for candidate in CANDIDATES:
        python = Path(candidate) / "bin" / "python"
        if candidate and python.exists() and (Path(candidate) / "bin" / "tempest").exists():
            probe = subprocess.run([str(python), "-c", "import subunit, testtools"], capture_output=True, check=False)
            if probe.returncode == 0:
                return Path(candidate)
    return None
