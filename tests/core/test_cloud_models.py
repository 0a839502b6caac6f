"""``tinystack up`` maps every model before any service runs (a restart once raced the network bootstrap's first
query against compute's model import, and every query of the process failed from then on)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A fresh interpreter: in the test process other tests have long imported every model.
PROBE = """
from tinystack import cloud
from tinystack.core.db import Base
cloud.map_models(cloud.SERVICES)
names = {m.class_.__name__ for m in Base.registry.mappers}
assert {"Instance", "BlockDeviceMapping", "Port", "ResourceProvider", "Image", "Project"} <= names, names
assert all(m.configured for m in Base.registry.mappers)
print("ok")
"""


def test_every_model_is_mapped_before_services_start() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=60,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
