"""How long the NBD export daemon is gone when it is killed: the volume agent watches it (a pidfd) and serves its
exports again at once. Measured against, in the same run, the agent's cold start of the same exports (the first
put of the documents: the daemon started and every export added), which is the work a restore repeats; the
ratio restore / cold start says what the watch adds on top of that work. Before the watch, a restore waited for
the next full pass (``[volume] resync_interval``, 30 s), printed for comparison.
A real ``qemu-storage-daemon`` on loopback with TLS-PSK; the agent's volumes are files of a fake driver.
Usage: python benchmarks/nbd_daemon_restore.py [rounds] [exports]
"""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import signal
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tinystack.core.bus import InProcessBus
from tinystack.volume.agent import VolumeAgent
from tinystack.volume.drivers.fake import FakeVolumeDriver
from tinystack.volume.drivers.nbd import NbdServer, identity_of

HOST = "bench"
RESYNC = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def served(server: NbdServer, want: set[str], old_pid: int | None, deadline: float) -> None:
    while server.pid() in (None, old_pid) or set(await server.exports()) != want:
        if time.monotonic() > deadline:
            raise TimeoutError("the exports did not come back")
        await asyncio.sleep(0.005)


async def one_round(tmp: Path, exports: int) -> tuple[float, float, float, float]:
    volumes = tmp / "volumes"
    volumes.mkdir()
    driver = FakeVolumeDriver(capacity_gb=100, path=str(volumes))
    server = NbdServer(tmp / "nbd", "127.0.0.1", free_port())
    bus = InProcessBus()
    agent = VolumeAgent(bus, HOST, driver, tmp / "records", heartbeat_interval=60, resync_interval=3600,
                        poll_interval=0.02, exporter=server)
    await agent.start()
    docs = []
    for _ in range(exports):
        vid, att = str(uuid.uuid4()), str(uuid.uuid4())
        (volumes / f"volume-{vid}").write_bytes(b"\0" * 65536)
        docs.append((vid, {"attachment_id": att, "name": secrets.token_urlsafe(24), "identity": identity_of(att),
                           "key": secrets.token_hex(32), "read_only": False}))
    want = {d["attachment_id"] for _, d in docs}
    try:
        t0, c0 = time.perf_counter(), cpu()
        for vid, doc in docs:
            await bus.publish(f"agent.volume.{HOST}", {"op": "put", "type": "volume", "id": vid, "generation": 1,
                                                        "spec": {"size_gb": 1, "exports": [doc]}})
        await served(server, want, None, time.monotonic() + 60)
        cold, cold_cpu = time.perf_counter() - t0, cpu() - c0
        pid = server.pid()
        assert pid is not None
        t0, c0 = time.perf_counter(), cpu()
        os.kill(pid, signal.SIGKILL)
        await served(server, want, pid, time.monotonic() + 60)
        restore, restore_cpu = time.perf_counter() - t0, cpu() - c0
    finally:
        await agent.stop(cleanup=True)
        await bus.close()
    return cold, cold_cpu, restore, restore_cpu


async def main(rounds: int, exports: int) -> None:
    results = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="nbdrestore-") as tmp:
            results.append(await one_round(Path(tmp), exports))
    cold, cold_cpu, restore, restore_cpu = (min(r[i] for r in results) for i in range(4))
    print(f"exports: {exports}, rounds: {rounds} (best of), load average {os.getloadavg()[0]:.1f}")
    print(f"cold start of the exports: {cold * 1000:.0f} ms wall, {cold_cpu * 1000:.0f} ms agent CPU")
    print(f"restore after kill -9:     {restore * 1000:.0f} ms wall, {restore_cpu * 1000:.0f} ms agent CPU")
    print(f"ratio restore / cold start: {restore / cold:.2f} wall, {restore_cpu / max(cold_cpu, 1e-9):.2f} CPU")
    print(f"before the watch: up to the next resync, {RESYNC:.0f} s ({RESYNC / restore:.0f}x the restore)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else 8))
