"""The metadata API (port 8775 and ``STATE_DIR/metadata.sock``): Nova's OpenStack and EC2 layouts, read-only
except the one-time ``password`` POST. Every request must carry a proxy's signature: on the TCP port, the timed one
(a network host's relay forwards there, ``[metadata] upstream``); on the unix socket, also the older timeless one."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from aiohttp import web

from tinystack.core import errors, sockpath
from tinystack.core.web import Route, ServiceApp, ServiceRunner, plain_fault
from tinystack.metadata import documents
from tinystack.metadata.service import MetadataService


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


class Handlers:
    def __init__(self, svc: MetadataService, timeless_ok: bool) -> None:
        self.svc = svc
        # The older timeless signature never crosses a network: only the unix socket takes it.
        self.timeless_ok = timeless_ok

    async def _instance(self, request: web.Request) -> dict[str, Any]:
        network_id, source_ip = self.svc.caller(request.headers, request.method, request.path, self.timeless_ok)
        return await self.svc.instance_for(network_id, source_ip)

    async def get(self, request: web.Request) -> web.Response:
        inst = await self._instance(request)
        parts = _parts(request.path)
        domain = self.svc.settings.dhcp_domain
        try:
            if parts[:1] == ["openstack"]:
                if len(parts) == 3 and parts[2] == "password":
                    version = parts[1]
                    if version not in documents.OPENSTACK_VERSIONS and version != "latest":
                        raise documents.UnknownPath(version)
                    body, ctype = (inst.get("password") or "").encode(), documents.TEXT
                else:
                    body, ctype = documents.openstack(inst, parts[1:], domain)
            else:
                body, ctype = documents.ec2(inst, parts, domain)
        except documents.UnknownPath:
            raise errors.NotFound("The resource could not be found.") from None
        return web.Response(body=body, content_type=ctype, charset="utf-8" if ctype == documents.TEXT else None)

    async def post(self, request: web.Request) -> web.Response:
        parts = _parts(request.path)
        if not (len(parts) == 3 and parts[0] == "openstack" and parts[2] == "password"):
            raise errors.MethodNotAllowed("The method POST is not allowed for this resource.")
        inst = await self._instance(request)
        raw = await request.content.read(documents.PASSWORD_MAX + 1)
        try:
            password = documents.check_password(raw)
        except ValueError as exc:
            raise errors.BadRequest(str(exc)) from None
        await self.svc.set_password(inst["uuid"], password)
        return web.Response(status=200, text="")


def routes(svc: MetadataService, timeless_ok: bool = False) -> list[Route]:
    h = Handlers(svc, timeless_ok)
    return [Route("GET", "/{tail:.*}", h.get, public=True), Route("POST", "/{tail:.*}", h.post, public=True)]


def app(svc: MetadataService) -> ServiceApp:
    """The TCP app; starting it also serves the same routes on the unix socket the proxies forward to."""
    unix: list[web.AppRunner] = []
    bound: list[int] = []  # the inode of the socket file this process made

    async def start_socket() -> None:
        path = svc.settings.socket
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket from an earlier run
        runner = ServiceRunner(ServiceApp("metadata", routes(svc, timeless_ok=True), plain_fault).build())
        await runner.setup()
        await web.UnixSite(runner, str(path)).start()
        os.chmod(path, 0o600)
        unix.append(runner)
        bound.append(path.stat().st_ino)

    async def stop_socket() -> None:
        while unix:
            await unix.pop().cleanup()
        path = svc.settings.socket
        with contextlib.suppress(OSError):
            # Only the socket this process bound: API processes sharing one ``[metadata] socket`` take it over
            # from each other as they start, and a stopping one must not remove its successor's.
            if bound and path.stat().st_ino == bound.pop():
                path.unlink()
                if path.parent.parent == sockpath.short_root():  # a short directory of its own (core/sockpath.py)
                    path.parent.rmdir()

    return ServiceApp("metadata", routes(svc), plain_fault, on_startup=[start_socket], on_cleanup=[stop_socket])
