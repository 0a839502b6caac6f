"""The only runner of privileged host commands: argv lists (never a shell), logged, optionally in a netns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Seconds to wait for a killed command's pipes to close before giving up on it.
END_WAIT = 10.0


class CommandFailed(RuntimeError):
    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(f"{shlex.join(argv)} exited {returncode}: {stderr.strip() or stdout.strip()}")
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


async def run(
    argv: list[str],
    *,
    netns: str | None = None,
    check: bool = True,
    input: bytes | None = None,
    timeout: float = 60.0,
) -> Completed:
    """Run ``argv`` (inside network namespace ``netns`` when given) and return its output."""
    if not argv or any(not isinstance(a, str) for a in argv):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    log.info("host: %s", shlex.join(full))
    proc = await asyncio.create_subprocess_exec(
        *full,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own process group, so that ending it ends what it started too (below).
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except TimeoutError:
        await _end(proc, full)
        raise CommandFailed(full, -9, "", f"timed out after {timeout}s") from None
    except asyncio.CancelledError:
        # Never leave a half-run host command behind the caller's back.
        if proc.returncode is None:
            await _end(proc, full)
        raise
    result = Completed(full, proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and result.returncode != 0:
        log.warning("host: %s exited %d: %s", shlex.join(full), result.returncode, result.stderr.strip())
        raise CommandFailed(full, result.returncode, result.stdout, result.stderr)
    return result


async def _end(proc: asyncio.subprocess.Process, argv: list[str]) -> None:
    """Kill the command's whole process group, then wait (bounded) for it. Killing the command alone is not
    enough: ``dpkg-deb -x`` runs tar, apt-get its download methods, and those keep its output pipes open once
    nobody reads them, so ``wait()``, which returns only when the pipes close, waited for ever and held up
    ``tinystack up``'s stop."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), END_WAIT)
    except TimeoutError:
        log.warning("host: %s still holds its pipes %g s after it was killed", shlex.join(argv), END_WAIT)
