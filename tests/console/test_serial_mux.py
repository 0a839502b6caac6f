"""The interactive serial console beside the console log: the agent's drain is QEMU's one client, logs
everything, fans the guest's output out to the clients of its ``serial-mux`` socket and sends their keystrokes
to the guest. A QEMU-like unix server stands in for the guest's serial port."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tinystack.compute.drivers.qemu.console import ConsoleDrain

pytestmark = pytest.mark.unit


async def _scenario(tmp: Path) -> None:
    typed = asyncio.Queue[bytes]()
    guests: list[asyncio.StreamWriter] = []

    async def guest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        guests.append(writer)
        writer.write(b"boot line\n")
        while data := await reader.read(100):
            await typed.put(data)
            writer.write(b"echo " + data + b"\nlogin: ")

    serial, mux, log = tmp / "serial.sock", tmp / "serial-mux.sock", tmp / "console.log"
    server = await asyncio.start_unix_server(guest, path=str(serial))
    drain = ConsoleDrain(serial, log, 4096, mux)
    await drain.start()
    try:
        for _ in range(100):
            if mux.exists() and log.exists():
                break
            await asyncio.sleep(0.02)
        assert oct(mux.stat().st_mode & 0o777) == "0o600"
        r1, w1 = await asyncio.open_unix_connection(str(mux))
        r2, w2 = await asyncio.open_unix_connection(str(mux))
        await asyncio.sleep(0.05)
        w1.write(b"root\r")
        await w1.drain()
        assert await asyncio.wait_for(typed.get(), 5) == b"root\r"
        expected = b"echo root\r\nlogin: "
        assert await asyncio.wait_for(r1.readexactly(len(expected)), 5) == expected
        assert await asyncio.wait_for(r2.readexactly(len(expected)), 5) == expected  # every client sees it
        w2.close()  # a client leaving changes nothing for the others
        w1.write(b"x")
        await w1.drain()
        assert await asyncio.wait_for(typed.get(), 5) == b"x"
        assert await asyncio.wait_for(r1.readexactly(len(b"echo x\nlogin: ")), 5) == b"echo x\nlogin: "
        for _ in range(100):
            if b"echo x" in log.read_bytes():
                break
            await asyncio.sleep(0.02)
        assert log.read_bytes() == b"boot line\necho root\r\nlogin: echo x\nlogin: "  # the log has all of it
        # QEMU going away ends the interactive sessions and removes the socket.
        for writer in guests:
            writer.close()
        server.close()
        assert await asyncio.wait_for(r1.read(), 5) == b""
        for _ in range(100):
            if not mux.exists():
                break
            await asyncio.sleep(0.02)
        assert not mux.exists()
        w1.close()
    finally:
        await drain.stop()
        server.close()
        with contextlib.suppress(FileNotFoundError):
            serial.unlink()


def test_serial_mux(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))


def test_drain_without_mux_serves_no_socket(tmp_path: Path) -> None:
    async def scenario() -> None:
        serial = tmp_path / "serial.sock"

        async def guest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"hi\n")
            await reader.read()

        server = await asyncio.start_unix_server(guest, path=str(serial))
        drain = ConsoleDrain(serial, tmp_path / "console.log", 4096)
        await drain.start()
        await asyncio.sleep(0.1)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["console.log", "serial.sock"]
        await drain.stop()
        server.close()

    asyncio.run(scenario())
