"""Starting a real ``tinystack up`` process for a benchmark, and reading its memory."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

# A loopback address of its own, so a benchmark never collides with another cloud on this machine.
BIND = os.environ.get("TINYSTACK_BENCH_BIND") or f"127.0.{random.randint(100, 250)}.{random.randint(2, 250)}"


def start(state_dir: Path, env: dict[str, str] | None = None,
          command: list[str] | None = None) -> tuple[subprocess.Popen[str], float]:
    """Start ``tinystack up`` and return it with the seconds it took to print ``tinystack ready``.
    ``command``: what runs ``tinystack`` (default its console script), e.g. a variant without one service.

    The cloud gets a host name of its own and a namespace standing in for the host's network, so a
    benchmark never wires anything into the machine itself (``stop`` removes that namespace).
    """
    exe = Path(sys.executable).with_name("tinystack")
    host = f"bench{uuid.uuid4().hex[:6]}"
    netns = f"tsx-{host}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    ini = state_dir.parent / f"{host}.ini"
    ini.write_text(f"[DEFAULT]\nhost = {host}\n[network]\nexternal_netns = {netns}\n")
    _netns[state_dir] = netns
    started = time.perf_counter()
    proc = subprocess.Popen([*(command or [str(exe)]), "--config", str(ini), "up", "--state-dir", str(state_dir), "--bind", BIND],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "tinystack ready":
            return proc, time.perf_counter() - started
    raise RuntimeError(f"tinystack up exited {proc.wait()} before it was ready")


_netns: dict[Path, str] = {}


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    args = [str(a) for a in proc.args]  # type: ignore[union-attr]
    state_dir = Path(args[args.index("--state-dir") + 1])
    netns = _netns.pop(state_dir, None)
    if netns:
        subprocess.run(["ip", "netns", "delete", netns], check=False, capture_output=True)
        (state_dir.parent / f"{netns.removeprefix('tsx-')}.ini").unlink(missing_ok=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cloud_auth(state_dir: Path, cloud: str = "admin") -> dict[str, str]:
    data = yaml.safe_load((state_dir / "clouds.yaml").read_text())
    return data["clouds"][cloud]["auth"]  # type: ignore[no-any-return]
