"""The serial console: QEMU serves it on a unix socket; the agent drains it into a size-capped log file.

Why a socket and not a file chardev: the agent owns the file, so the cap is exact and the log stays
readable while it is trimmed; with nobody connected (the agent restarting) QEMU drops the output instead of
growing a file without bound, and the guest never blocks on its serial port.

The interactive serial console goes through the drain too: QEMU's socket takes one client, and the guest's
login runs on its one serial port, so the drain (the one client) serves a second unix socket, ``serial-mux``,
where each client gets the guest's output from then on and its keystrokes go to the guest. The log keeps
everything either way; an agent restart closes the interactive sessions (the client connects again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

MUX_BACKLOG = 1024 * 1024  # bytes of output an interactive client may fall behind before it is dropped


class CappedLog:
    """Appends to ``path``; past ``max_bytes`` it keeps the newest three quarters (atomic rewrite)."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max(4096, max_bytes)

    def append(self, data: bytes) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size + len(data) <= self.max_bytes:
            with open(self.path, "ab") as f:
                f.write(data)
            return
        keep = self.max_bytes * 3 // 4
        old = b""
        with contextlib.suppress(FileNotFoundError), open(self.path, "rb") as f:
            f.seek(max(0, size - keep))
            old = f.read()
        tail = (old + data)[-keep:]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(tail)
        os.replace(tmp, self.path)


class ConsoleDrain:
    """A task that copies everything from the console socket into the capped log until QEMU closes it."""

    def __init__(self, sock: Path, log_path: Path, max_bytes: int, mux: Path | None = None) -> None:
        self.sock = sock
        self.mux = mux
        self._clients: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self.log = CappedLog(log_path, max_bytes)
        self.first_output: float | None = None  # monotonic time of the first byte (benchmarks)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, timeout: float = 5.0) -> None:
        """Connect (QEMU must be listening) and start draining; returns once connected."""
        self._task = asyncio.create_task(self._run(), name=f"console-{self.sock.parent.name}")
        waiter = asyncio.create_task(self._connected.wait())
        await asyncio.wait({self._task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def _run(self) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.sock))
        except OSError as exc:
            log.warning("console %s: cannot connect: %s", self.sock, exc)
            return
        self._connected.set()
        try:
            await self._serve_mux(writer)
            while chunk := await reader.read(65536):
                if self.first_output is None:
                    self.first_output = time.monotonic()
                self.log.append(chunk)
                self._fan_out(chunk)
        except OSError as exc:
            log.debug("console %s closed: %s", self.sock, exc)
        finally:
            await self._close_mux()
            writer.close()

    async def _serve_mux(self, guest: asyncio.StreamWriter) -> None:
        if self.mux is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.mux.unlink()  # left by an agent that was killed

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._clients.add(writer)
            try:
                while data := await reader.read(4096):
                    guest.write(data)
                    await guest.drain()
            except OSError:
                pass
            finally:
                self._clients.discard(writer)
                writer.close()

        self._server = await asyncio.start_unix_server(client, path=str(self.mux))
        os.chmod(self.mux, 0o600)

    def _fan_out(self, chunk: bytes) -> None:
        for writer in list(self._clients):
            # A client that stopped reading is dropped rather than buffered without bound.
            if writer.transport.get_write_buffer_size() > MUX_BACKLOG:
                self._clients.discard(writer)
                writer.close()
            else:
                writer.write(chunk)

    async def _close_mux(self) -> None:
        for writer in list(self._clients):
            writer.close()
        self._clients.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
            if self.mux is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.mux.unlink()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
