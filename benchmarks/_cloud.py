"""Starting a real ``tinystack up`` process for a benchmark, and reading its memory."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

# A loopback address of its own, so a benchmark never collides with another cloud on this machine.
BIND = os.environ.get("TINYSTACK_BENCH_BIND") or f"127.0.{random.randint(100, 250)}.{random.randint(2, 250)}"


def start(state_dir: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], float]:
    """Start ``tinystack up`` and return it with the seconds it took to print ``tinystack ready``."""
    exe = Path(sys.executable).with_name("tinystack")
    started = time.perf_counter()
    proc = subprocess.Popen([str(exe), "up", "--state-dir", str(state_dir), "--bind", BIND],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "tinystack ready":
            return proc, time.perf_counter() - started
    raise RuntimeError(f"tinystack up exited {proc.wait()} before it was ready")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cloud_auth(state_dir: Path, cloud: str = "admin") -> dict[str, str]:
    data = yaml.safe_load((state_dir / "clouds.yaml").read_text())
    return data["clouds"][cloud]["auth"]  # type: ignore[no-any-return]
