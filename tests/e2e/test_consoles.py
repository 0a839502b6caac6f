"""Consoles of a real TCG guest (the session's shared one, conftest.py): the noVNC websocket reaches
QEMU's VNC server (its RFB greeting), the serial websocket reaches the guest's getty through the agent's console
drain (which keeps logging meanwhile), and spent or expired tokens open nothing."""

from __future__ import annotations

import asyncio
import time
import urllib.parse

import aiohttp
import pytest
from sqlalchemy import update

from tests.e2e import guests
from tests.livecloud import LiveCloud
from tinystack.console.models import ConsoleToken
from tinystack.console.tokens import digest

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]


def token_of(url: str) -> str:
    params = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    if "path" in params:
        params = urllib.parse.parse_qs(urllib.parse.urlparse(params["path"][0]).query)
    return params["token"][0]


def ws_url(cloud: LiveCloud, token: str) -> str:
    return cloud.url("console").replace("http://", "ws://") + f"/?token={token}"


def refused(url: str) -> int:
    async def attempt() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=10)):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
    return asyncio.run(attempt())


def test_novnc_websocket_reaches_qemu_vnc(ssh_guest: guests.SshGuest) -> None:
    cloud = ssh_guest.cloud
    console = ssh_guest.conn.compute.create_console(ssh_guest.server.id, "novnc")
    assert console["type"] == "novnc" and console["url"].startswith(cloud.url("console") + "/vnc_lite.html?")
    url = ws_url(cloud, token_of(console["url"]))

    async def greeting() -> bytes:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url, protocols=("binary",), timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
            data = await asyncio.wait_for(ws.receive_bytes(), 30)
            await ws.send_bytes(b"RFB 003.008\n")  # our version back: the server then offers security types
            types = await asyncio.wait_for(ws.receive_bytes(), 30)
            return data + b"|" + types

    got = asyncio.run(greeting())
    assert got.startswith(b"RFB 003.008\n|"), got
    assert got.split(b"|", 1)[1][0] >= 1  # at least one security type offered
    assert refused(url) == 403  # single use


def test_serial_websocket_reaches_the_getty(ssh_guest: guests.SshGuest) -> None:
    console = ssh_guest.conn.compute.create_console(ssh_guest.server.id, "serial")
    assert console["type"] == "serial" and console["url"].startswith("ws://")
    marker = f"console-{int(time.time())}"

    async def login_prompt() -> str:
        seen = b""
        async with aiohttp.ClientSession() as session, session.ws_connect(
                console["url"], protocols=("binary",), timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
            deadline = time.monotonic() + 120
            # Enter makes getty print its prompt again; what we type is echoed back, so the marker shows too.
            await ws.send_bytes(f"{marker}\r".encode())
            while b"login:" not in seen or marker.encode() not in seen:
                if time.monotonic() > deadline:
                    break
                try:
                    msg = await asyncio.wait_for(ws.receive(), 5)
                except TimeoutError:
                    await ws.send_bytes(b"\r")
                    continue
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                seen += msg.data
            # Leave getty as it was: end the half-typed login.
            await ws.send_bytes(b"\x03\r")
        return seen.decode(errors="replace")

    seen = asyncio.run(login_prompt())
    assert "login:" in seen and marker in seen, seen[-2000:]
    # The drain logged the same session: the console log still works beside the interactive console.
    guests.wait_console(ssh_guest.conn, ssh_guest.server, marker, timeout=30)


def test_expired_token_refused(ssh_guest: guests.SshGuest) -> None:
    cloud = ssh_guest.cloud
    console = ssh_guest.conn.compute.create_console(ssh_guest.server.id, "novnc")
    token = token_of(console["url"])
    svc = cloud.cloud.runtime.services["console"]  # type: ignore[union-attr]
    with svc.session() as s:
        s.execute(update(ConsoleToken).where(ConsoleToken.token_hash == digest(token)).values(expires=1))
    assert refused(ws_url(cloud, token)) == 403
