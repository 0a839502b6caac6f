"""Live migration over QMP: the destination QEMU listens (``migrate-incoming``), the source sends (``migrate``)
and both ends watch ``query-migrate``. The caller holds the instance's lock around each call."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.qemu import qmp
from tinystack.compute.drivers.qemu.layout import InstanceDir

_POLL = 0.05


async def listen(idir: InstanceDir, address: str) -> str:
    """Make the QEMU of ``idir`` (started with ``-incoming defer``) listen on ``address`` and return the URI the
    source sends to. Port 0 lets the kernel pick a free port; QEMU reports the one it bound."""
    info = await qmp.execute(idir.qmp, "query-migrate") or {}
    if not info.get("socket-address"):
        await qmp.execute(idir.qmp, "migrate-incoming", {"uri": f"tcp:{address}:0"})
        info = await qmp.execute(idir.qmp, "query-migrate") or {}
    for sock in info.get("socket-address") or ():
        if sock.get("type") == "inet" and sock.get("port"):
            return f"tcp:{sock['host']}:{sock['port']}"
    raise DriverError(f"the incoming QEMU reports no listening address: {info!r}")


async def send(idir: InstanceDir, uri: str, timeout: float) -> dict[str, Any]:
    """Send the guest to ``uri`` and wait for the end; returns QEMU's final ``query-migrate`` answer.

    On failure QEMU itself resumes the guest on the source; on timeout the migration is cancelled, which does
    the same. Either way the guest keeps running here and ``DriverError`` says why.
    """
    info = await qmp.execute(idir.qmp, "query-migrate") or {}
    if info.get("status") not in ("active", "setup", "device", "pre-switchover"):
        await qmp.execute(idir.qmp, "migrate", {"uri": uri})
    deadline = time.monotonic() + timeout
    while True:
        info = await qmp.execute(idir.qmp, "query-migrate") or {}
        status = info.get("status")
        if status == "completed":
            return info
        if status in ("failed", "cancelled"):
            raise DriverError(f"live migration to {uri} {status}: {info.get('error-desc', 'no reason given')}")
        if time.monotonic() > deadline:
            with contextlib.suppress(DriverError):
                await qmp.execute(idir.qmp, "migrate_cancel")
            raise DriverError(f"live migration to {uri} did not finish within {timeout:.0f}s; cancelled")
        await asyncio.sleep(_POLL)
