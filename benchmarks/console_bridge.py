"""What the node console bridge (split deployment) costs against opening the guest's unix socket directly, in one
run: the time to open a console (connect, plus the signed request and its answer through the bridge) and the
throughput of a stream through it (a VNC framebuffer update is such a stream), each as a ratio to the direct way.

A unix server stands in for QEMU's VNC socket: it greets, then sends ``MB`` MiB in 64 KiB chunks. Loopback TCP
stands in for the management network, so the figure is the bridge's own overhead, not a network's.

Usage: python benchmarks/console_bridge.py [opens] [MB]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tinystack.compute import console_sockets
from tinystack.compute.agent_console import NodeBridge
from tinystack.core import consolebridge

KEY = os.urandom(32).hex().encode()
CHUNK = b"\xa5" * 65536


async def main(opens: int, megabytes: int) -> None:
    iid = str(uuid.uuid4())
    with tempfile.TemporaryDirectory() as tmp:
        instances = Path(tmp) / "instances"
        path = console_sockets.socket_path(instances, iid, "node1", "vnc")
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = {"bytes": 0}

        async def guest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"RFB 003.008\n")
            for _ in range(stream["bytes"] // len(CHUNK)):
                writer.write(CHUNK)
                await writer.drain()
            writer.close()

        async def holds(instance_id: str) -> bool:
            return instance_id == iid

        server = await asyncio.start_unix_server(guest, path=str(path))
        bridge = NodeBridge("node1", KEY, "127.0.0.1:0", instances, holds)
        await bridge.start()

        async def direct() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_unix_connection(str(path))

        async def bridged() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await consolebridge.open_bridge(bridge.address, KEY, "node1", iid, "vnc")

        async def open_once(how: object) -> float:
            start = time.perf_counter()
            reader, writer = await how()  # type: ignore[operator]
            await reader.readexactly(12)
            elapsed = time.perf_counter() - start
            writer.close()
            return elapsed

        async def stream_once(how: object) -> float:
            reader, writer = await how()  # type: ignore[operator]
            await reader.readexactly(12)
            start = time.perf_counter()
            got = 0
            while data := await reader.read(1 << 20):
                got += len(data)
            elapsed = time.perf_counter() - start
            writer.close()
            assert got == stream["bytes"], got
            return stream["bytes"] / elapsed / 2**20

        try:
            times: dict[str, list[float]] = {"direct": [], "bridge": []}
            for _ in range(opens):  # alternately, so both see the same load
                times["direct"].append(await open_once(direct))
                times["bridge"].append(await open_once(bridged))
            stream["bytes"] = megabytes * 2**20
            rates: dict[str, list[float]] = {"direct": [], "bridge": []}
            for _ in range(3):
                rates["direct"].append(await stream_once(direct))
                rates["bridge"].append(await stream_once(bridged))
        finally:
            await bridge.stop()
            server.close()
    open_direct, open_bridge = (statistics.median(times[k]) * 1000 for k in ("direct", "bridge"))
    rate_direct, rate_bridge = (max(rates[k]) for k in ("direct", "bridge"))
    print(f"open a console, median of {opens}: direct unix socket {open_direct:.2f} ms, through the bridge "
          f"{open_bridge:.2f} ms ({open_bridge / open_direct:.1f}x)")
    print(f"stream {megabytes} MiB, best of 3: direct {rate_direct:.0f} MiB/s, through the bridge {rate_bridge:.0f} "
          f"MiB/s ({rate_bridge / rate_direct:.2f}x)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 64))
