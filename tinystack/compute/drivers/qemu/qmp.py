"""QMP over the instance's unix socket, through the ``qemu.qmp`` library: one short session per call.

QEMU serves one monitor client at a time, so callers hold the instance's lock around a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from qemu.qmp import ExecInterruptedError, QMPClient, QMPError

from tinystack.compute.drivers.base import CRASHED, PAUSED, RUNNING, SHUTDOWN, SUSPENDED, DriverError

log = logging.getLogger(__name__)

# query-status "status" → Nova power_state. Migration and save states count as paused: vCPUs are stopped.
POWER_FOR_RUNSTATE = {
    "running": RUNNING, "paused": PAUSED, "prelaunch": PAUSED, "inmigrate": PAUSED, "postmigrate": PAUSED,
    "finish-migrate": PAUSED, "save-vm": PAUSED, "restore-vm": PAUSED, "debug": PAUSED, "colo": PAUSED,
    "suspended": SUSPENDED, "shutdown": SHUTDOWN, "guest-panicked": CRASHED, "internal-error": CRASHED,
    "io-error": CRASHED, "watchdog": CRASHED,
}


# A session whose handshake went wrong is tried again this many times: right after a migration's switch-over the
# destination's monitor has answered a new client's qmp_capabilities with something other than its reply.
NEGOTIATION_ATTEMPTS = 3


@contextlib.asynccontextmanager
async def session(sock: Path, timeout: float = 5.0) -> AsyncIterator[QMPClient]:
    for attempt in range(1, NEGOTIATION_ATTEMPTS + 1):
        client = QMPClient(sock.parent.name)
        try:
            await asyncio.wait_for(client.connect(str(sock)), timeout)
            break
        except QMPError as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            # No socket, or nobody on it: QEMU is gone, and asking again says the same.
            if attempt == NEGOTIATION_ATTEMPTS or isinstance(getattr(exc, "exc", None), OSError):
                raise DriverError(f"QMP socket unreachable: {exc}") from exc
            log.info("QMP handshake on %s failed (%s); trying again", sock, exc)
            await asyncio.sleep(0.1 * attempt)
        except (OSError, TimeoutError) as exc:
            raise DriverError(f"QMP socket unreachable: {exc}") from exc
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


async def execute(sock: Path, command: str, arguments: Mapping[str, Any] | None = None,
                  timeout: float = 10.0) -> Any:
    """Run one command; ``quit`` and other commands that end the process return None."""
    async with session(sock) as client:
        try:
            return await asyncio.wait_for(client.execute(command, arguments), timeout)
        except ExecInterruptedError:
            return None  # the process went away while answering (quit)
        except QMPError as exc:
            raise DriverError(f"QMP {command} failed: {exc}") from exc
        except TimeoutError as exc:
            raise DriverError(f"QMP {command} timed out after {timeout}s") from exc


async def runstate(sock: Path) -> str:
    result = await execute(sock, "query-status")
    return str(result["status"])
