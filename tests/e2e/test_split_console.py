"""Issue 17 in the split deployment (db tier): the console proxy of a ``tinystack api`` process reaches a guest's
VNC and serial sockets on a node that only ``tinystack agent`` runs, through the node's console bridge over TCP.

PostgreSQL and RabbitMQ as in tests/e2e/test_split_cluster.py; one API process (its own ports, no balancer), one
agent with the fake drivers. A fake-driver guest has no QEMU and so no sockets: the test serves stand-ins at the
paths the QEMU driver would use on the node (computed from the node's instances path, which is not the API
process's: the proxy cannot open them itself, only the bridge can).
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from tests.console.standin import RFB_HELLO, NodeSocket, echo
from tests.databases import available, scratch_database
from tests.e2e import splitcluster as sc
from tests.e2e.test_api_race import token, wait
from tinystack.compute.console_sockets import socket_path

pytestmark = [pytest.mark.db, pytest.mark.e2e]


@pytest.fixture
def split(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """The API process's URLs by service, and the base directory (node1's state dir is ``base/node1``)."""
    if not available("postgresql"):
        pytest.fail("no PostgreSQL on loopback: the test command's setup should provide one")
    exchange = f"tinystack-console-{uuid.uuid4().hex[:8]}"
    procs: list[sc.Proc] = []
    with scratch_database("postgresql") as db_url:
        try:
            ini = sc.write_config(tmp_path, db_url, exchange)
            ports = {s: sc.free_port() for s in ("identity", "compute", "image", "console")}
            procs.append(sc.start("api", "api1", tmp_path, ini, sc.api_env(ports, {})))
            procs.append(sc.start("agent", "node1", tmp_path, ini, seed=tmp_path / "api1"))
            suffix = {"identity": "/v3", "compute": "/v2.1"}
            yield {s: f"http://127.0.0.1:{p}{suffix.get(s, '')}" for s, p in ports.items()}, tmp_path
        finally:
            sc.stop_all(procs)
            sc.remove_queues(exchange)


def _token(url: str) -> str:
    params = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    if "path" in params:
        params = urllib.parse.parse_qs(urllib.parse.urlparse(params["path"][0]).query)
    return params["token"][0]


async def _exchange(url: str) -> list[bytes]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, protocols=("binary",)) as ws:
        got = [await asyncio.wait_for(ws.receive_bytes(), 20)]
        await ws.send_bytes(b"hello")
        got.append(await asyncio.wait_for(ws.receive_bytes(), 20))
        return got


async def _status(url: str) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_console_through_the_node_bridge(split: tuple[dict[str, str], Path]) -> None:
    urls, base = split
    tok, _ = token(urls["identity"], base / "api1")
    headers = {"X-Auth-Token": tok, "OpenStack-API-Version": "compute 2.79"}
    compute = urls["compute"]

    def get(url: str) -> Any:
        r = requests.get(url, headers=headers, timeout=30)
        assert r.status_code == 200, f"GET {url}: {r.status_code} {r.text[:300]}"
        return r.json()

    # The agent reported its bridge with its node: the hypervisor shows up once its node document is in.
    wait("node1's hypervisor", lambda: any(h["hypervisor_hostname"] == "node1"
                                           for h in get(f"{compute}/os-hypervisors")["hypervisors"]))
    image = requests.post(urls["image"] + "/v2/images", headers=headers, timeout=30, json={
        "name": "console", "disk_format": "raw", "container_format": "bare", "visibility": "public"}).json()
    r = requests.put(f"{urls['image']}/v2/images/{image['id']}/file", data=b"\0" * 4096, timeout=30,
                     headers={**headers, "Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    flavor = next(f["id"] for f in get(f"{compute}/flavors")["flavors"] if f["name"] == "m1.tiny")
    r = requests.post(f"{compute}/servers", headers=headers, timeout=60, json={"server": {
        "name": "console-split", "imageRef": image["id"], "flavorRef": flavor, "networks": "none"}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = wait("the server ACTIVE", lambda: (s := get(f"{compute}/servers/{sid}")["server"])["status"] == "ACTIVE"
                  and s, timeout=120)
    assert server["OS-EXT-SRV-ATTR:host"] == "node1"

    def console(kind: str) -> str:
        protocol = "vnc" if kind == "novnc" else "serial"
        r = requests.post(f"{compute}/servers/{sid}/remote-consoles", headers=headers, timeout=30,
                          json={"remote_console": {"protocol": protocol, "type": kind}})
        assert r.status_code == 200, r.text
        return str(r.json()["remote_console"]["url"])

    def ws(kind: str) -> str:
        return urls["console"].replace("http://", "ws://") + f"/?token={_token(console(kind))}"

    node_instances = base / "node1" / "instances"
    with contextlib.ExitStack() as stack:
        # No socket yet on the node: the bridge says so and the proxy answers 409.
        assert asyncio.run(_status(ws("novnc"))) == 409
        for kind in ("vnc", "serial"):
            stack.enter_context(NodeSocket(socket_path(node_instances, sid, "node1", kind), echo))
        assert asyncio.run(_exchange(ws("novnc"))) == [RFB_HELLO, b"echo:hello"]
        assert asyncio.run(_exchange(ws("serial"))) == [RFB_HELLO, b"echo:hello"]
    log = (base / "node1" / "log" / "agent-node1.log").read_text()
    assert f"console bridge: vnc of {sid} opened" in log and f"console bridge: serial of {sid} opened" in log
    r = requests.delete(f"{compute}/servers/{sid}", headers=headers, timeout=30)
    assert r.status_code == 204, r.text
