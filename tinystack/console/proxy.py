"""The websocket bridge: one browser (noVNC) or serial client on one side, the instance's unix socket on the
node on the other, bytes copied both ways until either end closes.

Frames are binary, as noVNC and websockify's ``binary`` subprotocol use; a client that asks for ``base64``
(old noVNC) gets and sends base64 text frames. Text frames from a client without it (serial clients that type
text) are taken as UTF-8 bytes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from tinystack.core import consolebridge

if TYPE_CHECKING:
    from tinystack.console.service import Target

log = logging.getLogger(__name__)

SUBPROTOCOLS = ("binary", "base64")
CHUNK = 65536
MAX_FRAME = 4 * 1024 * 1024
# A websocket ping every so often: a browser tab that vanished without closing ends its bridge.
HEARTBEAT = 30.0


async def connect(target: Target, node_secret: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The node-side socket: the unix socket itself when the node's agents run in this process, else through the
    node's console bridge (split deployment). A node on another machine that reports no bridge is tried at the
    unix socket's path all the same (an agent of an older release beside this process); OSError when it cannot
    be reached."""
    if not target.local and target.bridge:
        if not node_secret:
            raise consolebridge.BridgeError("[console] node_secret is not set: the console bridges refuse")
        return await consolebridge.open_bridge(target.bridge, node_secret, target.host, target.grant.instance_id,
                                               target.kind)
    return await asyncio.open_unix_connection(str(target.path))


async def bridge(request: web.Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 label: str) -> web.WebSocketResponse:
    """Upgrade ``request`` and copy between it and (``reader``, ``writer``) until one side closes."""
    ws = web.WebSocketResponse(protocols=SUBPROTOCOLS, max_msg_size=MAX_FRAME, heartbeat=HEARTBEAT)
    await ws.prepare(request)
    as_text = ws.ws_protocol == "base64"

    async def to_client() -> None:
        while data := await reader.read(CHUNK):
            if as_text:
                await ws.send_str(base64.b64encode(data).decode())
            else:
                await ws.send_bytes(data)

    async def to_guest() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                data = msg.data
            elif msg.type == WSMsgType.TEXT:
                try:
                    data = base64.b64decode(msg.data, validate=True) if as_text else msg.data.encode()
                except (binascii.Error, ValueError):
                    log.info("console %s: a frame that is not base64, closing", label)
                    return
            else:
                return
            writer.write(data)
            await writer.drain()

    tasks = [asyncio.create_task(to_client()), asyncio.create_task(to_guest())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if (exc := task.exception()) is not None and not isinstance(exc, (ConnectionError, OSError)):
                log.warning("console %s: %s", label, exc)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        await ws.close()
    log.info("console %s closed", label)
    return ws
