"""The network host's relay (``[metadata] upstream``): proxy -> relay's unix socket -> the metadata API's TCP port,
and the signing rule that lets only a proxy's fresh signature for this very request through on TCP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from tests.metadata.test_api import A, B, cloud, fetch, run
from tinystack import config
from tinystack.metadata import api, proxy, relay, secret, settings
from tinystack.metadata.service import MetadataService

KEY = b"0123456789abcdef0123456789abcdef"
PATH = "/openstack/latest/meta_data.json"


def test_signature_names_network_address_time_method_and_path() -> None:
    now = 1_700_000_000
    sig = secret.sign_request(KEY, "net-a", "10.0.0.5", now, "GET", PATH)
    assert secret.verify_request(KEY, "net-a", "10.0.0.5", str(now), "GET", PATH, sig, now + 5)
    assert secret.verify_request(KEY, "net-a", "10.0.0.5", str(now), "get", PATH, sig.upper(), now)
    wrong = [("net-b", "10.0.0.5", str(now), "GET", PATH),
             ("net-a", "10.0.0.6", str(now), "GET", PATH),
             ("net-a", "10.0.0.5", str(now + 1), "GET", PATH),
             ("net-a", "10.0.0.5", str(now), "POST", PATH),
             ("net-a", "10.0.0.5", str(now), "GET", "/openstack/latest/password")]
    for net, ip, stamp, method, path in wrong:
        assert not secret.verify_request(KEY, net, ip, stamp, method, path, sig, now)
    assert not secret.verify_request(b"another-key-0123456789", "net-a", "10.0.0.5", str(now), "GET", PATH, sig, now)


def test_signature_is_refused_out_of_its_time() -> None:
    now = 1_700_000_000
    sig = secret.sign_request(KEY, "n", "10.0.0.5", now, "GET", PATH)
    assert not secret.verify_request(KEY, "n", "10.0.0.5", str(now), "GET", PATH, sig, now + secret.MAX_SKEW + 1)
    assert not secret.verify_request(KEY, "n", "10.0.0.5", str(now), "GET", PATH, sig, now - secret.MAX_SKEW - 1)
    # Whatever int() would also take is not a time: signs, spaces inside, other digits, thousands of digits.
    for stamp in ("+1700000000", "1_700_000_000", "\u0661\u0667", "9" * 4000, "", "-5", "17e8"):
        assert not secret.verify_request(KEY, "n", "10.0.0.5", stamp, "GET", PATH, sig, now), stamp


def test_upstream_must_be_an_http_origin(tmp_path: Path) -> None:
    assert settings.check_upstream("http://controller:8775/") == "http://controller:8775"
    assert settings.check_upstream("https://192.0.2.10") == "https://192.0.2.10"
    for bad in ("controller:8775", "ftp://c", "http://", "http://c/metadata", "http://c:8775?x=1", "unix:/run/m"):
        with pytest.raises(ValueError):
            settings.check_upstream(bad)
    cfg = config.load(None, environ={"TINYSTACK_METADATA_UPSTREAM": "http://c:8775/"},
                      overrides={"state_dir": str(tmp_path)})
    assert settings.load(cfg).upstream == "http://c:8775"


@asynccontextmanager
async def relayed(tmp: Path) -> AsyncIterator[tuple[MetadataService, str, str]]:
    """The metadata API; the relay on a unix socket forwarding to its TCP port; a proxy for net-a forwarding to the
    relay. Yields (service, the API's URL, the proxy's URL)."""
    async with cloud(tmp) as (svc, _start_proxy):
        runners: list[web.AppRunner] = []
        try:
            api_runner = web.AppRunner(api.app(svc).build())
            await api_runner.setup()
            await web.TCPSite(api_runner, "127.0.0.1", 0).start()
            runners.append(api_runner)
            api_url = f"http://127.0.0.1:{api_runner.addresses[0][1]}"
            sock = tmp / "relay.sock"
            relay_runner = web.AppRunner(relay.make_app(api_url))
            await relay_runner.setup()
            await web.UnixSite(relay_runner, str(sock)).start()
            runners.append(relay_runner)
            proxy_runner = web.AppRunner(proxy.make_app(str(sock), "net-a", svc.secret))
            await proxy_runner.setup()
            await web.TCPSite(proxy_runner, "127.0.0.1", 0).start()
            runners.append(proxy_runner)
            yield svc, api_url, f"http://127.0.0.1:{proxy_runner.addresses[0][1]}"
        finally:
            for r in reversed(runners):
                await r.cleanup()


def test_guest_reads_its_own_data_through_the_relay(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        async with relayed(tmp) as (svc, _api, url):
            forged = {"X-Forwarded-For": "127.0.0.1", "X-Tinystack-Network-ID": "net-b",
                      "X-Tinystack-Signature-Time": str(int(time.time())),
                      "X-Tinystack-Signature": secret.sign(svc.secret, "net-b", "127.0.0.1"), "X-Instance-ID": B}
            status, data = await fetch(url, PATH, headers=forged)
            assert status == 200 and json.loads(data)["uuid"] == A
            assert await fetch(url, "/openstack/latest/user_data") == (200, b"#!/bin/sh\necho hello\n")
            # A path that needs quoting is signed as the API reads it: not found, not refused.
            assert (await fetch(url, "/openstack/latest/meta%20data.json"))[0] == 404
            assert (await fetch(url, "/openstack/latest/password", "POST", data=b"enc"))[0] == 200
            assert await fetch(url, "/openstack/latest/password") == (200, b"enc")
    run(body, tmp_path)


def test_tcp_port_refuses_unsigned_timeless_stale_and_replayed_requests(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        async with relayed(tmp) as (svc, api, _url):
            now = int(time.time())

            def signed(stamp: int, method: str = "GET", path: str = PATH) -> dict[str, str]:
                return {"X-Forwarded-For": "127.0.0.1", "X-Tinystack-Network-ID": "net-a",
                        "X-Tinystack-Signature-Time": str(stamp),
                        "X-Tinystack-Signature": secret.sign_request(svc.secret, "net-a", "127.0.0.1", stamp,
                                                                     method, path)}

            timeless = {"X-Forwarded-For": "127.0.0.1", "X-Tinystack-Network-ID": "net-a",
                        "X-Tinystack-Signature": secret.sign(svc.secret, "net-a", "127.0.0.1")}
            attempts = [
                {},
                {"X-Instance-ID": A, "X-Forwarded-For": "127.0.0.1"},
                timeless,  # the unix socket's older form: it would name the guest forever
                signed(now - secret.MAX_SKEW - 5),  # recorded earlier
                signed(now, path="/openstack/latest/password"),  # made for another path
                signed(now, method="POST"),  # ... or another method
                {**signed(now), "X-Tinystack-Network-ID": "net-b"},
                {**signed(now), "X-Tinystack-Signature-Time": str(now + 1)},
            ]
            for headers in attempts:
                status, data = await fetch(api, PATH, headers=headers)
                assert status == 403, headers
                assert data.startswith(b"403 Forbidden") and b"uuid" not in data
            status, data = await fetch(api, PATH, headers=signed(now))
            assert status == 200 and json.loads(data)["uuid"] == A
            # The unix socket still takes the older form, from proxies an older agent started.
            status, data = await fetch("http://metadata", PATH, socket=svc.settings.socket, headers=timeless)
            assert status == 200 and json.loads(data)["uuid"] == A
    run(body, tmp_path)


def test_relay_answers_503_when_the_api_is_unreachable(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp)})
        key = secret.load_or_create(settings.load(cfg).secret_file)
        sock = tmp / "relay.sock"
        runners = [web.AppRunner(relay.make_app("http://127.0.0.1:9")),
                   web.AppRunner(proxy.make_app(str(sock), "net-a", key))]
        for r in runners:
            await r.setup()
        await web.UnixSite(runners[0], str(sock)).start()
        await web.TCPSite(runners[1], "127.0.0.1", 0).start()
        try:
            status, data = await fetch(f"http://127.0.0.1:{runners[1].addresses[0][1]}", PATH)
            assert status == 503 and b"unreachable" in data
        finally:
            for r in reversed(runners):
                await r.cleanup()
    run(body, tmp_path)
