"""The only runner of privileged host commands: argv lists (never a shell), logged, optionally in a netns."""

from __future__ import annotations

import asyncio
import logging
import shlex
from dataclasses import dataclass

log = logging.getLogger(__name__)


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
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CommandFailed(full, -9, "", f"timed out after {timeout}s") from None
    except asyncio.CancelledError:
        # Never leave a half-run host command behind the caller's back.
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise
    result = Completed(full, proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and result.returncode != 0:
        log.warning("host: %s exited %d: %s", shlex.join(full), result.returncode, result.stderr.strip())
        raise CommandFailed(full, result.returncode, result.stdout, result.stderr)
    return result
