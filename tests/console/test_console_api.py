"""Remote consoles through the compute API (openstackclient, openstacksdk, raw HTTP) and the console proxy's
websocket, on the live cloud with the fake compute driver. The guest's VNC and serial sockets are stood in for by
unix servers the test starts at the paths compute names, so the whole way (token, proxy, node socket) is real."""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import requests
from sqlalchemy import update

from tests.console.standin import RFB_HELLO, echo, node_socket
from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack.console.models import ConsoleToken
from tinystack.console.tokens import digest

pytestmark = pytest.mark.api

@pytest.fixture(scope="module")
def image_id(live: LiveCloud) -> str:
    conn = live.conn("admin")
    image = conn.image.create_image(name="console-test-img", data=b"\0" * 4096, disk_format="raw",
                                    container_format="bare", visibility="public")
    return str(image.id)


def boot(live: LiveCloud, image_id: str, name: str, cloud: str = "demo") -> Any:
    conn = live.conn(cloud)
    server = conn.compute.create_server(name=name, image_id=image_id, flavor_id="42", networks="none")
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)


@pytest.fixture(scope="module")
def server(live: LiveCloud, image_id: str) -> Iterator[Any]:
    srv = boot(live, image_id, "console-srv")
    yield srv
    live.conn("demo").compute.delete_server(srv, ignore_missing=True)


def nova(live: LiveCloud, cloud: str, method: str, path: str, version: str = "2.96", **kw: Any) -> requests.Response:
    token = live.conn(cloud).auth_token
    return requests.request(method, live.url("compute") + path, timeout=30, **kw,
                            headers={"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"})


def remote(live: LiveCloud, sid: str, protocol: str, kind: str, cloud: str = "demo") -> requests.Response:
    return nova(live, cloud, "POST", f"/servers/{sid}/remote-consoles",
                json={"remote_console": {"protocol": protocol, "type": kind}})


def token_of(url: str) -> str:
    query = urllib.parse.urlparse(url).query
    params = urllib.parse.parse_qs(query)
    if "path" in params:
        params = urllib.parse.parse_qs(urllib.parse.urlparse(params["path"][0]).query)
    return params["token"][0]


def ws_url(live: LiveCloud, token: str) -> str:
    return live.url("console").replace("http://", "ws://") + f"/?token={token}"


async def _ws_exchange(url: str, send: bytes | None, protocols: tuple[str, ...] = ("binary",)) -> list[bytes]:
    got: list[bytes] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url, protocols=protocols, timeout=10) as ws:
        got.append(await asyncio.wait_for(ws.receive_bytes(), 10))
        if send is not None:
            await ws.send_bytes(send)
            got.append(await asyncio.wait_for(ws.receive_bytes(), 10))
    return got


def ws_status(url: str) -> int:
    """The HTTP status the proxy answers a websocket upgrade with (101 when it accepted)."""
    async def attempt() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url, timeout=10):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
    return asyncio.run(attempt())


def test_cli_console_url_and_novnc_websocket(live: LiveCloud, server: Any) -> None:
    shown = live.cli_json("console", "url", "show", server.id, cloud="demo")
    assert shown["type"] == "novnc" and shown["protocol"] == "vnc"
    url = shown["url"]
    assert url.startswith(live.url("console") + "/vnc_lite.html?path=%3Ftoken%3D"), url
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "core/rfb.js" in page.text
    rfb = requests.get(live.url("console") + "/core/rfb.js", timeout=10)
    assert rfb.status_code == 200 and "javascript" in rfb.headers["Content-Type"]
    token = token_of(url)
    with node_socket(live, server.id, "novnc", echo):
        got = asyncio.run(_ws_exchange(ws_url(live, token), b"hello"))
        assert got == [RFB_HELLO, b"echo:hello"]
        # Single use: the same URL again is refused before any upgrade.
        assert ws_status(ws_url(live, token)) == 403


def test_serial_console_websocket(live: LiveCloud, server: Any) -> None:
    shown = live.cli_json("console", "url", "show", "--serial", server.id, cloud="demo")
    assert shown["type"] == "serial" and shown["protocol"] == "serial"
    assert shown["url"].startswith(live.url("console").replace("http://", "ws://") + "/?token=")
    with node_socket(live, server.id, "serial", echo):
        got = asyncio.run(_ws_exchange(shown["url"], b"\r"))
    assert got == [RFB_HELLO, b"echo:\r"]


def test_base64_subprotocol(live: LiveCloud, server: Any) -> None:
    url = remote(live, server.id, "vnc", "novnc").json()["remote_console"]["url"]

    async def exchange() -> tuple[str | None, str]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(ws_url(live, token_of(url)), protocols=("base64",), timeout=10) as ws:
            return ws.protocol, await asyncio.wait_for(ws.receive_str(), 10)

    with node_socket(live, server.id, "novnc", echo):
        protocol, text = asyncio.run(exchange())
    assert protocol == "base64" and text == "UkZCIDAwMy4wMDgK"  # base64 of the RFB greeting


def test_origin_of_another_site_refused(live: LiveCloud, server: Any) -> None:
    def status(origin: str) -> int:
        url = remote(live, server.id, "vnc", "novnc").json()["remote_console"]["url"]

        async def attempt() -> int:
            async with aiohttp.ClientSession() as session:
                try:
                    async with session.ws_connect(ws_url(live, token_of(url)), headers={"Origin": origin},
                                                  timeout=aiohttp.ClientWSTimeout(ws_close=10)):
                        return 101
                except aiohttp.WSServerHandshakeError as exc:
                    return exc.status
        return asyncio.run(attempt())

    with node_socket(live, server.id, "novnc", echo):
        assert status("http://evil.example.org") == 403
        assert status("null") == 403
        assert status(live.url("console")) == 101  # the proxy's own page


def test_expired_and_unknown_tokens_refused(live: LiveCloud, server: Any) -> None:
    url = remote(live, server.id, "vnc", "novnc").json()["remote_console"]["url"]
    token = token_of(url)
    console = live.cloud.runtime.services["console"]  # type: ignore[union-attr]
    with console.session() as s:
        s.execute(update(ConsoleToken).where(ConsoleToken.token_hash == digest(token)).values(expires=1))
    with node_socket(live, server.id, "novnc", echo):
        assert ws_status(ws_url(live, token)) == 403
        assert ws_status(ws_url(live, "made-up-token")) == 403
        assert ws_status(live.url("console").replace("http://", "ws://") + "/") == 403


def test_sdk_and_legacy_actions(live: LiveCloud, server: Any) -> None:
    conn = live.conn("demo")
    console = conn.compute.create_console(server.id, "novnc")
    assert console["type"] == "novnc" and "token" in console["url"]
    for action, kind in (("os-getVNCConsole", "novnc"), ("os-getSerialConsole", "serial")):
        r = nova(live, "demo", "POST", f"/servers/{server.id}/action", version="2.5", json={action: {"type": kind}})
        assert r.status_code == 200, r.text
        assert r.json()["console"]["type"] == kind and token_of(r.json()["console"]["url"])
    # Gone from 2.6 on, as in Nova.
    r = nova(live, "demo", "POST", f"/servers/{server.id}/action", version="2.6",
             json={"os-getVNCConsole": {"type": "novnc"}})
    assert r.status_code == 404
    # Before 2.6 there is no remote-consoles resource.
    r = nova(live, "demo", "POST", f"/servers/{server.id}/remote-consoles", version="2.5",
             json={"remote_console": {"protocol": "vnc", "type": "novnc"}})
    assert r.status_code == 404


@pytest.mark.parametrize(("body", "version"), [
    ({"remote_console": {"protocol": "spice", "type": "spice-html5"}}, "2.96"),  # known, not served here
    ({"remote_console": {"protocol": "rdp", "type": "rdp-html5"}}, "2.96"),
    ({"remote_console": {"protocol": "vnc", "type": "serial"}}, "2.96"),  # type of another protocol
    ({"remote_console": {"protocol": "vnc", "type": "bogus"}}, "2.96"),
    ({"remote_console": {"protocol": "mks", "type": "webmks"}}, "2.6"),  # mks from 2.8
    ({"remote_console": {"protocol": "vnc"}}, "2.96"),
    ({"remote_console": {"protocol": "vnc", "type": "novnc", "extra": 1}}, "2.96"),
    ({}, "2.96"),
])
def test_bad_requests(live: LiveCloud, server: Any, body: dict[str, Any], version: str) -> None:
    r = nova(live, "demo", "POST", f"/servers/{server.id}/remote-consoles", version=version, json=body)
    assert r.status_code == 400, r.text
    assert "badRequest" in r.json()


def test_legacy_bad_types(live: LiveCloud, server: Any) -> None:
    for body in ({"os-getVNCConsole": {"type": "serial"}}, {"os-getVNCConsole": {}},
                 {"os-getSPICEConsole": {"type": "spice-html5"}}, {"os-getSerialConsole": None}):
        r = nova(live, "demo", "POST", f"/servers/{server.id}/action", version="2.5", json=body)
        assert r.status_code == 400, (body, r.text)


def test_not_found_other_project_and_reader(live: LiveCloud, server: Any) -> None:
    assert remote(live, "00000000-0000-0000-0000-000000000000", "vnc", "novnc").status_code == 404
    other = live.project_conn("console-other")
    r = requests.post(f"{live.url('compute')}/servers/{server.id}/remote-consoles", timeout=30,
                      headers={"X-Auth-Token": other.auth_token, "OpenStack-API-Version": "compute 2.96"},
                      json={"remote_console": {"protocol": "vnc", "type": "novnc"}})
    assert r.status_code == 404
    # A reader of the server's own project sees it but may not open its console (Nova's member rule).
    admin = live.conn("admin")
    name, password = f"console-reader-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    user = admin.identity.create_user(name=name, password=password, domain_id="default")
    demo = admin.identity.find_project("demo", ignore_missing=False)
    admin.identity.assign_project_role_to_user(demo, user, admin.identity.find_role("reader", ignore_missing=False))
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "password": password, "domain": {"id": "default"}}}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}
    issued = requests.post(live.url("identity") + "/auth/tokens", json=auth, timeout=30)
    assert issued.status_code == 201, issued.text
    r = requests.post(f"{live.url('compute')}/servers/{server.id}/remote-consoles", timeout=30,
                      headers={"X-Auth-Token": issued.headers["X-Subject-Token"],
                               "OpenStack-API-Version": "compute 2.96"},
                      json={"remote_console": {"protocol": "vnc", "type": "novnc"}})
    assert r.status_code == 403, r.text
    # The admin may open any project's.
    assert remote(live, server.id, "vnc", "novnc", cloud="admin").status_code == 200


def test_conflict_when_not_running(live: LiveCloud, image_id: str) -> None:
    conn = live.conn("demo")
    srv = boot(live, image_id, "console-stopped")
    try:
        url = remote(live, srv.id, "vnc", "novnc").json()["remote_console"]["url"]
        conn.compute.stop_server(srv)
        conn.compute.wait_for_server(conn.compute.get_server(srv.id), status="SHUTOFF", wait=30, interval=0.1)
        r = remote(live, srv.id, "vnc", "novnc")
        assert r.status_code == 409 and "conflictingRequest" in r.json(), r.text
        # A URL issued while it ran opens nothing once it stopped.
        assert ws_status(ws_url(live, token_of(url))) == 409
    finally:
        conn.compute.delete_server(srv, ignore_missing=True)


# -- through the node console bridge (split deployment) -----------------------------------------------------

BRIDGE_KEY = b"bridge-test-key-0123456789abcdef"


@pytest.fixture
def bridged(live: LiveCloud) -> Iterator[str]:
    """The proxy treats the session cloud's node as another machine's (as ``tinystack api`` treats every node):
    the node's compute agent serves its console bridge on loopback TCP and reports it over the bus, as
    ``tinystack agent`` does, and the proxy reaches the node's sockets only through it."""
    from tinystack.compute.agent import ComputeAgent
    from tinystack.compute.models import ComputeNode

    agent = live.agent(ComputeAgent, live.host)
    runtime = live.cloud.runtime
    assert runtime is not None
    console, compute = runtime.services["console"], runtime.services["compute"]

    def reported() -> str | None:
        with compute.session() as s:
            node = s.get(ComputeNode, live.host)
            return node.console_address if node is not None else None

    address = live.call(agent.serve_console_bridge("127.0.0.1:0", BRIDGE_KEY))
    wait_for(lambda: reported() == address, 30, "the node's console bridge reported")
    saved = console.node_secret
    console.node_secret = BRIDGE_KEY
    runtime.local_hosts.discard(live.host)
    try:
        yield address
    finally:
        runtime.local_hosts.add(live.host)
        console.node_secret = saved
        live.call(agent.stop_console_bridge())
        live.call(agent._publish_node())
        wait_for(lambda: reported() is None, 30, "the node's console bridge gone")


def test_novnc_and_serial_through_the_node_bridge(live: LiveCloud, server: Any, bridged: str) -> None:
    url = live.cli_json("console", "url", "show", server.id, cloud="demo")["url"]
    with node_socket(live, server.id, "novnc", echo):
        assert asyncio.run(_ws_exchange(ws_url(live, token_of(url)), b"hello")) == [RFB_HELLO, b"echo:hello"]
    serial = live.cli_json("console", "url", "show", "--serial", server.id, cloud="demo")["url"]
    with node_socket(live, server.id, "serial", echo):
        assert asyncio.run(_ws_exchange(serial, b"\r")) == \
            [RFB_HELLO, b"echo:\r"]


def test_bridge_refusal_is_a_conflict(live: LiveCloud, server: Any, bridged: str) -> None:
    """With the socket there but the bridge refusing (a proxy whose key is not the nodes'), no console opens:
    the proxy went through the bridge, not the socket on this machine."""
    console = live.cloud.runtime.services["console"]  # type: ignore[union-attr]
    with node_socket(live, server.id, "novnc", echo):
        console.node_secret = b"not-the-nodes-key-0123456789abcd"
        url = remote(live, server.id, "vnc", "novnc").json()["remote_console"]["url"]
        assert ws_status(ws_url(live, token_of(url))) == 409
        console.node_secret = b""
        url = remote(live, server.id, "vnc", "novnc").json()["remote_console"]["url"]
        assert ws_status(ws_url(live, token_of(url))) == 409
        console.node_secret = BRIDGE_KEY
        url = remote(live, server.id, "vnc", "novnc").json()["remote_console"]["url"]
        assert ws_status(ws_url(live, token_of(url))) == 101
