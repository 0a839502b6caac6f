"""The metadata relay: one per network host with ``[metadata] upstream`` set, as Neutron's metadata agent. The
``qdhcp-`` namespaces' proxies cannot reach the management network, so they forward to the relay's unix socket on
the network host (mode 0600), and the relay, in the host's own network namespace, carries each request on to the
metadata API over HTTP (its port 8775, or a load balancer in front of several).

It adds nothing: the proxy already named and signed the guest, with the time, method and path, and the API checks
that. It keeps only those identity headers and the few the proxies pass, so what reaches the API is what a proxy
sent. Run by the network agent: ``python -m tinystack.metadata.relay --listen <socket> --upstream <url>``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from tinystack.metadata.proxy import MAX_BODY, PASSED_HEADERS, UPSTREAM_TIMEOUT, forward, serve
from tinystack.metadata.service import FORWARDED_FOR, NETWORK_ID, SIGNATURE, SIGNATURE_TIME
from tinystack.metadata.settings import check_upstream

log = logging.getLogger("tinystack.metadata.relay")
RELAYED_HEADERS = (*PASSED_HEADERS, FORWARDED_FOR, NETWORK_ID, SIGNATURE, SIGNATURE_TIME)


class Relay:
    def __init__(self, upstream: str) -> None:
        self.upstream = check_upstream(upstream)
        self.session: aiohttp.ClientSession | None = None

    async def start(self, _app: web.Application) -> None:
        self.session = aiohttp.ClientSession(timeout=UPSTREAM_TIMEOUT)

    async def stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None  # set on start-up, before the first request
        headers = {name: request.headers[name] for name in RELAYED_HEADERS if name in request.headers}
        return await forward(self.session, self.upstream, request, headers, headers.get(FORWARDED_FOR, "?"))


def make_app(upstream: str) -> web.Application:
    relay = Relay(upstream)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", relay.handle)
    app.on_startup.append(relay.start)
    app.on_cleanup.append(relay.stop)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinystack.metadata.relay", description=__doc__)
    parser.add_argument("--listen", required=True, help="the unix socket the proxies forward to")
    parser.add_argument("--upstream", required=True, help="the metadata API's URL, e.g. http://controller:8775")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    path = Path(args.listen)
    os.umask(0o077)  # the socket is root's from the moment it exists, not only after the chmod
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a relay that was killed
    app = make_app(args.upstream)
    asyncio.run(serve(app, lambda runner: web.UnixSite(runner, str(path)), lambda: os.chmod(path, 0o600)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
