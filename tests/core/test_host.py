"""The host command runner ends what it started: a cancelled or timed-out command goes with everything it ran."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tinystack.core import host


def _alive(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())  # a zombie's is empty
    except OSError:
        return False


def _gone_soon(pid: int) -> bool:
    for _ in range(100):
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


async def _cancel_after(delay: float, argv: list[str]) -> float:
    task = asyncio.create_task(host.run(argv))
    await asyncio.sleep(delay)
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - started


def test_a_cancelled_command_ends_with_the_children_that_hold_its_pipes(tmp_path: Path) -> None:
    """As ``dpkg-deb -x`` with its tar: the child keeps the pipes open, and waiting for them once blocked for
    good (a ``tinystack up`` that never stopped)."""
    pidfile = tmp_path / "child.pid"
    argv = ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"]
    took = asyncio.run(_cancel_after(0.5, argv))
    assert took < host.END_WAIT
    assert _gone_soon(int(pidfile.read_text())), "the command's child outlived it"


def test_a_timed_out_command_ends_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    argv = ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"]
    started = time.monotonic()
    with pytest.raises(host.CommandFailed, match="timed out"):
        asyncio.run(host.run(argv, timeout=0.5))
    assert time.monotonic() - started < host.END_WAIT
    assert _gone_soon(int(pidfile.read_text()))
