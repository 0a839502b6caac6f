"""The metadata API behind its proxy, over the unix socket: a guest reads only its own instance's data, whatever
headers it forges, and an overlapping address on another network never yields another instance."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.metadata.instances import instance
from tinystack import config
from tinystack.metadata import api, proxy, secret
from tinystack.metadata.service import MetadataService

A, B = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"


class Network:
    """The two calls the metadata service makes of the network service, over a list of Neutron port dicts."""

    def __init__(self, ports: list[dict[str, Any]]) -> None:
        self.ports = ports

    def list_ports(self, _ctx: Any, filters: dict[str, Any]) -> list[dict[str, Any]]:
        ips = {f.split("=", 1)[1] for f in filters.get("fixed_ips", [])}
        return [p for p in self.ports if p["network_id"] == filters["network_id"]
                and any(ip["ip_address"] in ips for ip in p["fixed_ips"])]


class Compute:
    def __init__(self, instances: dict[str, dict[str, Any]]) -> None:
        self.instances = instances

    async def get_instance_metadata(self, instance_id: str) -> dict[str, Any] | None:
        return self.instances.get(instance_id)

    def set_instance_password(self, instance_id: str, password: str) -> bool:
        if self.instances[instance_id].get("password"):
            return False
        self.instances[instance_id]["password"] = password
        return True


def port(pid: str, net: str, ip: str, project: str, device: str, owner: str = "compute:nova") -> dict[str, Any]:
    return {"id": pid, "network_id": net, "project_id": project, "device_id": device, "device_owner": owner,
            "fixed_ips": [{"ip_address": ip, "subnet_id": "s"}]}


@asynccontextmanager
async def cloud(tmp: Path) -> AsyncIterator[tuple[MetadataService, Callable[[str], Awaitable[str]]]]:
    """The metadata API (TCP and unix socket), and a factory of proxies (one per network) on loopback."""
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp)})
    # Three networks reuse 127.0.0.1: net-b is another project's overlapping subnet, and on net-c a port of
    # project A claims B's instance as its device.
    ports = [port("pa", "net-a", "127.0.0.1", "proj-a", A), port("pb", "net-b", "127.0.0.1", "proj-b", B),
             port("pc", "net-c", "127.0.0.1", "proj-a", B), port("pd", "net-d", "127.0.0.1", "proj-a", A, "network:dhcp")]
    instances = {A: instance(uuid=A, name="vm-a", project="proj-a"),
                 B: instance(uuid=B, name="vm-b", project="proj-b", user_data=None)}
    svc = MetadataService(cfg, {"network": Network(ports), "compute": Compute(instances)})
    runners = [web.AppRunner(api.app(svc).build())]
    await runners[0].setup()
    await web.TCPSite(runners[0], "127.0.0.1", 0).start()

    async def start_proxy(network_id: str) -> str:
        runner = web.AppRunner(proxy.make_app(str(svc.settings.socket), network_id, svc.secret))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    try:
        yield svc, start_proxy
    finally:
        for r in reversed(runners):
            await r.cleanup()


async def fetch(url: str, path: str, method: str = "GET", socket: Path | None = None, **kw: Any) -> tuple[int, bytes]:
    connector = aiohttp.UnixConnector(path=str(socket)) if socket else None
    async with aiohttp.ClientSession(connector=connector) as http, http.request(method, url + path, **kw) as r:
        return r.status, await r.read()


def run(fn: Callable[[Path], Awaitable[None]], tmp: Path) -> None:
    asyncio.run(fn(tmp))


def test_secret_file_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "metadata-secret"
    first = secret.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert secret.load_or_create(path) == first and len(first) == 64


def test_guest_reads_its_own_data_through_the_proxy(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        async with cloud(tmp) as (_svc, start_proxy):
            url = await start_proxy("net-a")
            status, data = await fetch(url, "/openstack/latest/meta_data.json")
            assert status == 200
            md = json.loads(data)
            assert md["uuid"] == A and md["hostname"] == "vm-a.novalocal"
            assert await fetch(url, "/openstack/latest/user_data") == (200, b"#!/bin/sh\necho hello\n")
            assert await fetch(url, "/latest/meta-data/instance-id") == (200, b"i-aaaaaaaa")
            assert await fetch(url, "/latest/meta-data/public-keys/0/openssh-key") == (
                200, instance()["public_keys"]["k1"].encode())
            status, nd = await fetch(url, "/openstack/latest/network_data.json")
            assert status == 200 and json.loads(nd)["links"]
            assert (await fetch(url, "/openstack/latest/nothing"))[0] == 404
            assert (await fetch(url, "/"))[1].decode().endswith("2009-04-04\nlatest")
    run(body, tmp_path)


def test_forged_headers_are_replaced_by_the_proxy(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        async with cloud(tmp) as (svc, start_proxy):
            url = await start_proxy("net-a")
            forged = {"X-Forwarded-For": "127.0.0.1", "X-Tinystack-Network-ID": "net-b",
                      "X-Tinystack-Signature": secret.sign(svc.secret, "net-b", "127.0.0.1"),
                      "X-Instance-ID": B, "X-Tenant-ID": "proj-b"}
            status, data = await fetch(url, "/openstack/latest/meta_data.json", headers=forged)
            assert status == 200 and json.loads(data)["uuid"] == A
    run(body, tmp_path)


def test_overlapping_address_on_another_network_is_another_instance(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        async with cloud(tmp) as (_svc, start_proxy):
            url_a, url_b = await start_proxy("net-a"), await start_proxy("net-b")
            assert json.loads((await fetch(url_a, "/openstack/latest/meta_data.json"))[1])["uuid"] == A
            assert json.loads((await fetch(url_b, "/openstack/latest/meta_data.json"))[1])["uuid"] == B
            assert (await fetch(url_b, "/openstack/latest/user_data"))[0] == 404  # B has none; never A's
            # A port of project A naming B's instance as its device gets nothing; so does a non-instance port.
            url_c, url_d = await start_proxy("net-c"), await start_proxy("net-d")
            for url in (url_c, url_d):
                status, data = await fetch(url, "/openstack/latest/meta_data.json")
                assert status == 404 and B.encode() not in data and A.encode() not in data
    run(body, tmp_path)


def test_unsigned_and_badly_signed_requests_are_refused(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        async with cloud(tmp) as (svc, _start_proxy):
            sock = svc.settings.socket
            assert sock.stat().st_mode & 0o777 == 0o600
            path = "/openstack/latest/meta_data.json"
            good = {"X-Forwarded-For": "127.0.0.1", "X-Tinystack-Network-ID": "net-b",
                    "X-Tinystack-Signature": secret.sign(svc.secret, "net-b", "127.0.0.1")}
            attempts = [
                {},
                {"X-Instance-ID": A, "X-Forwarded-For": "127.0.0.1"},
                {**good, "X-Tinystack-Network-ID": "net-a"},  # signature made for another network
                {**good, "X-Forwarded-For": "127.0.0.2"},  # ... or another address
                {**good, "X-Tinystack-Signature": secret.sign(b"not-the-secret-0123456789", "net-b", "127.0.0.1")},
            ]
            for headers in attempts:
                status, data = await fetch("http://metadata", path, socket=sock, headers=headers)
                assert status == 403, headers
                assert b"uuid" not in data
            status, data = await fetch("http://metadata", path, socket=sock, headers=good)
            assert status == 200 and json.loads(data)["uuid"] == B
    run(body, tmp_path)


def test_password_is_set_once(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        async with cloud(tmp) as (_svc, start_proxy):
            url = await start_proxy("net-a")
            assert await fetch(url, "/openstack/latest/password") == (200, b"")
            assert (await fetch(url, "/openstack/latest/password", "POST", data=b"x" * 257))[0] == 400
            assert (await fetch(url, "/openstack/latest/password", "POST", data=b"enc-pass"))[0] == 200
            assert (await fetch(url, "/openstack/latest/password", "POST", data=b"other"))[0] == 409
            assert await fetch(url, "/openstack/2013-04-04/password") == (200, b"enc-pass")
            assert (await fetch(url, "/openstack/latest/meta_data.json", "POST", data=b"x"))[0] == 405
    run(body, tmp_path)


def test_a_stopping_api_process_leaves_its_successors_socket(tmp_path: Path) -> None:
    """API processes sharing one ``[metadata] socket`` take it over from each other as they start: the one that
    stops removes the socket only if it is still its own."""

    async def scenario() -> None:
        cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
        first, second = (web.AppRunner(api.app(MetadataService(cfg, {})).build()) for _ in range(2))
        sock = MetadataService(cfg, {}).settings.socket
        await first.setup()
        await second.setup()  # binds the same path: the first one's socket file is replaced
        await first.cleanup()
        assert sock.exists(), "the stopping process removed the socket its successor serves"
        await second.cleanup()
        assert not sock.exists()

    asyncio.run(scenario())
