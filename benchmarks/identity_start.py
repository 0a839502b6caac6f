"""Cold start to ``tinystack ready`` and idle RSS, against a bare Python start in the same run.

Usage: python benchmarks/identity_start.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import _cloud


def bare_python() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main(runs: int = 3) -> None:
    cold, warm, rss = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            proc, seconds = _cloud.start(Path(tmp))
            cold.append(seconds)
            time.sleep(3)
            rss.append(_cloud.rss_mb(proc.pid))
            _cloud.stop(proc)
            proc, seconds = _cloud.start(Path(tmp))
            warm.append(seconds)
            _cloud.stop(proc)
    base = statistics.median(bare_python() for _ in range(5))
    c, w, r = statistics.median(cold), statistics.median(warm), statistics.median(rss)
    print(f"bare python start:               {base * 1000:7.0f} ms")
    print(f"cold start to 'tinystack ready':  {c * 1000:7.0f} ms  ({c / base:.1f}x bare python; target <= 3000 ms)")
    print(f"warm start (existing state dir): {w * 1000:7.0f} ms  ({w / base:.1f}x bare python)")
    print(f"idle RSS of the whole process:   {r:7.1f} MB  (target <= 150 MB)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
