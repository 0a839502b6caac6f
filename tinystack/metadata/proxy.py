"""The metadata proxy: listens on 169.254.169.254:80 inside a ``qdhcp-`` namespace and forwards each guest
request to a unix socket, naming the guest (network id + source IP) and signing that name with the time, the
method and the path (tinystack/metadata/secret.py). The socket is the metadata API's own, or, on a network host
with ``[metadata] upstream``, its relay's (tinystack/metadata/relay.py), which carries the request on over TCP.

Run by the network agent: ``python -m tinystack.metadata.proxy --bind 169.254.169.254 --port 80 --upstream
<socket> --network-id <id> --secret-file <file>``. Whatever identity headers a guest sends are dropped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from tinystack.core import signals
from tinystack.metadata import secret
from tinystack.metadata.service import FORWARDED_FOR, NETWORK_ID, SIGNATURE, SIGNATURE_TIME

log = logging.getLogger("tinystack.metadata.proxy")
MAX_BODY = 64 * 1024
# Only these request headers reach the API; identity headers are always the proxy's own.
PASSED_HEADERS = ("Accept", "Content-Type", "User-Agent")
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=30)


async def forward(session: aiohttp.ClientSession, base: str, request: web.Request, headers: dict[str, str],
                  who: str) -> web.Response:
    """Send ``request`` (its method, path and body; ``headers`` instead of its own) to ``base`` and answer with the
    upstream's answer: 503 when it cannot be reached, 405/413 for what no metadata API takes."""
    if request.method not in ("GET", "HEAD", "POST"):
        return web.Response(status=405, text="405 Method Not Allowed\n")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return web.Response(status=413, text="413 Request Entity Too Large\n")
    try:
        async with session.request(request.method, f"{base}{request.path_qs}", headers=headers, data=body or None,
                                   allow_redirects=False) as upstream:
            data = await upstream.read()
            log.info("%s %s %s -> %d", who, request.method, request.path, upstream.status)
            return web.Response(status=upstream.status, body=data, content_type=upstream.content_type or "text/plain",
                                charset=upstream.charset)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("metadata API unreachable at %s: %s", base, exc)
        return web.Response(status=503, text="503 Service Unavailable\n\nThe metadata service is unreachable.\n")


class Proxy:
    def __init__(self, upstream: str, network_id: str, key: bytes) -> None:
        self.upstream = upstream
        self.network_id = network_id
        self.key = key
        self.session: aiohttp.ClientSession | None = None

    async def start(self, _app: web.Application) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self.upstream),
                                             timeout=UPSTREAM_TIMEOUT)

    async def stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    def headers_for(self, request: web.Request, source_ip: str) -> dict[str, str]:
        out = {name: request.headers[name] for name in PASSED_HEADERS if name in request.headers}
        stamp = int(time.time())
        out[FORWARDED_FOR] = source_ip
        out[NETWORK_ID] = self.network_id
        out[SIGNATURE_TIME] = str(stamp)
        # The path as the API will read it: aiohttp sends request.path_qs re-quoted, and the API unquotes it again.
        out[SIGNATURE] = secret.sign_request(self.key, self.network_id, source_ip, stamp, request.method, request.path)
        return out

    async def handle(self, request: web.Request) -> web.StreamResponse:
        source_ip = request.remote
        if not source_ip or self.session is None:
            return web.Response(status=400, text="400 Bad Request\n\nNo source address.\n")
        return await forward(self.session, "http://metadata", request, self.headers_for(request, source_ip),
                             source_ip)


def make_app(upstream: str, network_id: str, key: bytes) -> web.Application:
    proxy = Proxy(upstream, network_id, key)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    app.on_startup.append(proxy.start)
    app.on_cleanup.append(proxy.stop)
    return app


async def serve(app: web.Application, site: Callable[[web.AppRunner], web.BaseSite], after_start: Callable[[], None]
                = lambda: None) -> None:
    """Serve ``app`` on the site ``site`` makes until SIGINT or SIGTERM."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    listening = site(runner)
    await listening.start()
    after_start()
    log.info("listening on %s", listening.name)
    stop = asyncio.Event()
    signals.install(stop)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinystack.metadata.proxy", description=__doc__)
    parser.add_argument("--bind", default="169.254.169.254")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--upstream", required=True, help="unix socket of the metadata API or of the relay")
    parser.add_argument("--network-id", required=True)
    parser.add_argument("--secret-file", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    key = secret.load(Path(args.secret_file))
    app = make_app(args.upstream, args.network_id, key)
    asyncio.run(serve(app, lambda runner: web.TCPSite(runner, args.bind, args.port, reuse_address=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
