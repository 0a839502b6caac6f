"""A long-running process's signals: SIGINT and SIGTERM stop it; SIGUSR2 writes a state report to its log (every
asyncio task with the line it waits on, and every thread's stack), as Nova's Guru Meditation Report does, so an
operator can see what a live but stuck process is waiting for (docs/operations.md)."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import sys
import threading
import traceback
from typing import Any

log = logging.getLogger(__name__)

REPORT_SIGNAL = signal.SIGUSR2


def state_report() -> str:
    """The running loop's tasks and the process's threads, each with its stack, as text."""
    out = io.StringIO()
    try:
        tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    except RuntimeError:
        tasks = []
    out.write(f"{len(tasks)} asyncio tasks\n")
    for task in tasks:
        out.write(f"--- task {task.get_name()}\n")
        out.write("".join(_awaiting(task.get_coro())) or "  (no frame: done or not started)\n")
    names = {t.ident: t.name for t in threading.enumerate()}
    frames = sys._current_frames()
    out.write(f"{len(frames)} threads\n")
    for ident, frame in frames.items():
        out.write(f"--- thread {names.get(ident, ident)}\n")
        out.write("".join(traceback.format_stack(frame, limit=12)))
    return out.getvalue()


def _awaiting(coro: Any) -> list[str]:
    """The chain of coroutines ``coro`` waits through, outermost first, each at its current line (a task's own
    stack shows only the outermost one), ending with what the innermost awaits."""
    lines: list[str] = []
    while coro is not None and len(lines) < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            lines.append(f"  awaiting {coro!r}"[:300] + "\n")
            break
        lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}\n")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return lines


def _report() -> None:
    log.warning("state report (SIGUSR2):\n%s", state_report())


def install(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT or SIGTERM and write a state report on SIGUSR2, on the running loop."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(REPORT_SIGNAL, _report)
