"""Stand-ins for a guest's console sockets at the paths compute names for a fake-driver server, so the console
proxy is tested end to end without QEMU: an echo server that greets like VNC, and a minimal RFB 3.8 server
that noVNC completes its handshake with."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from tests.livecloud import LiveCloud

RFB_HELLO = b"RFB 003.008\n"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Greets like a VNC server, then answers everything it gets with ``echo:`` and the bytes."""
    writer.write(RFB_HELLO)
    while data := await reader.read(4096):
        writer.write(b"echo:" + data)
    writer.close()


async def rfb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFB 3.8 without authentication, a 64x48 true-colour desktop named ``stand-in``; ignores what follows."""
    writer.write(RFB_HELLO)
    await reader.readexactly(12)  # the client's version
    writer.write(bytes([1, 1]))  # one security type: None
    await reader.readexactly(1)
    writer.write((0).to_bytes(4, "big"))  # security result: OK
    await reader.readexactly(1)  # ClientInit
    pixel_format = bytes([32, 24, 0, 1]) + (255).to_bytes(2, "big") * 3 + bytes([16, 8, 0, 0, 0, 0])
    name = b"stand-in"
    writer.write((64).to_bytes(2, "big") + (48).to_bytes(2, "big") + pixel_format + len(name).to_bytes(4, "big")
                 + name)
    while await reader.read(4096):
        pass
    writer.close()


class NodeSocket:
    """A unix server at ``path`` in a thread of its own, serving each connection with ``handler``."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.AbstractServer | None = None
        self.made_dir = False

    def __enter__(self) -> NodeSocket:
        # The fake driver makes no run directory; one made here goes again on exit.
        self.made_dir = not self.path.parent.exists()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_unix_server(self.handler, path=str(self.path)), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            assert self.server is not None
            self.server.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.made_dir:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()


@contextlib.contextmanager
def node_socket(live: LiveCloud, sid: str, kind: str, handler: Handler) -> Iterator[NodeSocket]:
    """``handler`` listening where the console proxy will look for server ``sid``'s ``kind`` console."""
    compute = live.cloud.runtime.services["compute"]  # type: ignore[union-attr]
    endpoint = compute.consoles.endpoint(sid, kind)
    assert endpoint is not None and endpoint.host == live.host
    with NodeSocket(endpoint.path, handler) as sock:
        yield sock
