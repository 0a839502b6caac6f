"""Idle RSS that the dashboard and the console proxy add to ``tinystack up`` (issue 17: at most 30 MB together):
the same cloud started with both and with neither, alternately, in one run (the difference of the medians).

Usage: python benchmarks/console_rss.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import _cloud

# ``tinystack`` with the console service taken out of the registry and the dashboard turned off before the cloud
# is built.
WITHOUT_UI = [sys.executable, "-c",
              "import sys; from tinystack import registry, roles; "
              "registry.SERVICES[:] = [s for s in registry.SERVICES if s.name != 'console']; "
              "made = roles.cloud_for\n"
              "def cloud_for(*a, **k):\n"
              "    c = made(*a, **k); c.dashboard = False; return c\n"
              "roles.cloud_for = cloud_for\n"
              "from tinystack.cli import main; sys.argv[0] = 'tinystack'; sys.exit(main())"]
SETTLE = 5.0  # seconds after ``tinystack ready`` before reading RSS: the start-up's garbage is collected


def idle_rss(command: list[str] | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        proc, _ = _cloud.start(Path(tmp) / "state", command=command)
        try:
            time.sleep(SETTLE)
            return _cloud.rss_mb(proc.pid)
        finally:
            _cloud.stop(proc)


def main(runs: int = 3) -> None:
    with_console, without = [], []
    for _ in range(runs):
        without.append(idle_rss(WITHOUT_UI))
        with_console.append(idle_rss(None))
    a, b = statistics.median(without), statistics.median(with_console)
    print(f"idle RSS without dashboard and console proxy: {a:7.1f} MB  (runs: {', '.join(f'{x:.1f}' for x in without)})")
    print(f"idle RSS with both:                           {b:7.1f} MB  "
          f"(runs: {', '.join(f'{x:.1f}' for x in with_console)})")
    print(f"increment:                                    {b - a:7.1f} MB  ({b / a:.3f}x; ceiling 30 MB)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
