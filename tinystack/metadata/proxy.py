"""The metadata proxy: listens on 169.254.169.254:80 inside a ``qdhcp-`` namespace and forwards each guest
request to the metadata API's unix socket, naming the guest (network id + source IP) and signing that name.

Run by the network agent: ``python -m tinystack.metadata.proxy --bind 169.254.169.254 --port 80 --upstream
<socket> --network-id <id> --secret-file <file>``. Whatever identity headers a guest sends are dropped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from tinystack.metadata import secret
from tinystack.metadata.service import FORWARDED_FOR, NETWORK_ID, SIGNATURE

log = logging.getLogger("tinystack.metadata.proxy")
MAX_BODY = 64 * 1024
# Only these request headers reach the API; identity headers are always the proxy's own.
PASSED_HEADERS = ("Accept", "Content-Type", "User-Agent")
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=30)


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
        out[FORWARDED_FOR] = source_ip
        out[NETWORK_ID] = self.network_id
        out[SIGNATURE] = secret.sign(self.key, self.network_id, source_ip)
        return out

    async def handle(self, request: web.Request) -> web.StreamResponse:
        source_ip = request.remote
        if not source_ip or self.session is None:
            return web.Response(status=400, text="400 Bad Request\n\nNo source address.\n")
        if request.method not in ("GET", "HEAD", "POST"):
            return web.Response(status=405, text="405 Method Not Allowed\n")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return web.Response(status=413, text="413 Request Entity Too Large\n")
        try:
            async with self.session.request(request.method, f"http://metadata{request.path_qs}",
                                            headers=self.headers_for(request, source_ip),
                                            data=body or None, allow_redirects=False) as upstream:
                data = await upstream.read()
                log.info("%s %s %s -> %d", source_ip, request.method, request.path, upstream.status)
                return web.Response(status=upstream.status, body=data,
                                    content_type=upstream.content_type or "text/plain",
                                    charset=upstream.charset)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("metadata API unreachable at %s: %s", self.upstream, exc)
            return web.Response(status=503, text="503 Service Unavailable\n\nThe metadata service is unreachable.\n")


def make_app(upstream: str, network_id: str, key: bytes) -> web.Application:
    proxy = Proxy(upstream, network_id, key)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    app.on_startup.append(proxy.start)
    app.on_cleanup.append(proxy.stop)
    return app


async def serve(bind: str, port: int, app: web.Application) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, bind, port, reuse_address=True).start()
    log.info("metadata proxy listening on %s:%d", bind, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinystack.metadata.proxy", description=__doc__)
    parser.add_argument("--bind", default="169.254.169.254")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--upstream", required=True, help="unix socket of the metadata API")
    parser.add_argument("--network-id", required=True)
    parser.add_argument("--secret-file", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    key = secret.load(Path(args.secret_file))
    asyncio.run(serve(args.bind, args.port, make_app(args.upstream, args.network_id, key)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
