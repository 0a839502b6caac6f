"""The node console bridge (split deployment; docs/consoles.md): the compute agent serves it on ``[console]
node_listen`` so that a console proxy on another machine reaches the VNC and serial sockets of the guests this node
holds. One signed request per connection (tinystack/core/consolebridge.py), then bytes both ways."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from tinystack.compute import console_sockets
from tinystack.core import consolebridge
from tinystack.core.consolebridge import Refused, ReplayGuard

log = logging.getLogger(__name__)

CHUNK = 65536


class NodeBridge:
    """Serves node ``host``'s consoles. ``holds(instance_id)`` says whether the instance is this node's now; the
    socket's path is computed here from the instance id and kind, never taken from the request."""

    def __init__(self, host: str, key: bytes, listen: str, instances_path: Path,
                 holds: Callable[[str], Awaitable[bool]], advertise_host: str = "") -> None:
        if not key:
            raise ValueError("the console bridge needs [console] node_secret")
        self.host = host
        self.key = key
        self.listen = listen
        self.instances_path = instances_path
        self.holds = holds
        self.advertise_host = advertise_host
        self.guard = ReplayGuard()
        self.address = ""  # address:port as proxies reach it, once started
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        addr, port = consolebridge.split_address(self.listen)
        # A small line limit: the request line is the only thing read line-wise.
        self._server = await asyncio.start_server(self._accept, addr, port, limit=consolebridge.MAX_LINE * 2,
                                                  reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        shown = addr if addr not in ("0.0.0.0", "::", "") else (self.advertise_host or "127.0.0.1")
        self.address = consolebridge.join_address(shown, int(bound[1]))
        log.info("console bridge of %s listening on %s", self.host, self.address)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:  # stop() ends the bridges still open
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)
        try:
            await self.serve(reader, writer)
        except asyncio.CancelledError:
            # stop() ends it: the task of a stream server's callback ends quietly (a cancelled one is logged by
            # asyncio as an error).
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: check the request, connect to the guest's socket, copy until either side closes."""
        peer = writer.get_extra_info("peername")
        try:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), consolebridge.HANDSHAKE_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
                raise Refused("no request") from None
            req = consolebridge.verify(self.key, line, self.host, self.guard)
            if not await self.holds(req.instance_id):
                raise Refused("instance not on this node")
            # The path comes from the layout alone: the request only names a UUID (parse checked its form) and a
            # kind, so nothing in it can point the bridge at another socket or file.
            path = console_sockets.socket_path(self.instances_path, req.instance_id, self.host, req.kind)
            try:
                guest_r, guest_w = await asyncio.open_unix_connection(str(path))
            except OSError:
                raise Refused("console not available") from None
        except Refused as exc:
            log.info("console bridge: refused %s: %s", peer, exc)
            with contextlib.suppress(OSError):
                writer.write(f"ERR {exc}\n".encode())
                await writer.drain()
            writer.close()
            return
        log.info("console bridge: %s of %s opened for %s", req.kind, req.instance_id, peer)
        writer.write(b"OK\n")
        await _pipe(reader, writer, guest_r, guest_w)
        log.info("console bridge: %s of %s closed", req.kind, req.instance_id)


async def _pipe(a_r: asyncio.StreamReader, a_w: asyncio.StreamWriter, b_r: asyncio.StreamReader,
                b_w: asyncio.StreamWriter) -> None:
    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(CHUNK):
            dst.write(data)
            await dst.drain()

    tasks = [asyncio.create_task(copy(a_r, b_w)), asyncio.create_task(copy(b_r, a_w))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in (a_w, b_w):
            w.close()
            with contextlib.suppress(OSError):
                await w.wait_closed()
