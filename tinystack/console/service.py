"""The console service: issues console URLs (the compute API asks) and opens what a token grants (the proxy
asks). The tokens are its own table; where the instance's console is comes from the compute service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tinystack.config import Config
from tinystack.console import settings as settings_mod
from tinystack.console import tokens
from tinystack.console.tokens import Grant, TokenRefused
from tinystack.core import errors
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceBase

MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = ["MIGRATIONS", "ConsoleService", "Grant", "Target", "TokenRefused"]


@dataclass(frozen=True)
class Target:
    """The node-side end of a granted console: the node that holds the instance, its unix socket there and the
    socket's kind; ``local`` when that node's agents run in this process (the socket is on this machine), else
    the node's console bridge address (None: it serves none)."""

    grant: Grant
    host: str
    path: Path
    kind: str = "vnc"
    local: bool = True
    bridge: str | None = None


class ConsoleService(ServiceBase):
    def __init__(self, config: Config, db: Database, policy: PolicyEngine, services: Mapping[str, Any],
                 urls: Mapping[str, str], local_hosts: Collection[str] = frozenset()) -> None:
        super().__init__(db, policy, services)
        self.settings = settings_mod.load(config)
        self.urls = urls  # the cloud's bound URLs, complete once every site listens
        # The nodes whose agents run in this process (``tinystack up``): their sockets are on this machine.
        # Filled once the agents start; with ``tinystack api`` it stays empty and every node is reached through
        # its console bridge.
        self.local_hosts = local_hosts
        self.node_secret = self.settings.node_secret

    @property
    def base_url(self) -> str:
        base = self.settings.base_url or self.urls.get("console", "")
        if not base:
            raise errors.ServiceUnavailable("The console proxy is not listening yet.")
        return base

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Host names besides the proxy's own whose pages may frame the console page and open its websocket:
        ``[console] allowed_origins``, and the dashboard's host when it runs in the same cloud (its Console tab
        frames the page)."""
        dashboard = urlsplit(self.urls.get("dashboard", "")).hostname
        return self.settings.allowed_origins | ({dashboard.lower()} if dashboard else set())

    def frame_ancestors(self) -> str:
        """The CSP ``frame-ancestors`` sources for the console page: itself, the dashboard's exact origin, and
        any port of the allowed hosts."""
        sources = ["'self'"]
        dashboard = self.urls.get("dashboard", "")
        if dashboard:
            parts = urlsplit(dashboard)
            sources.append(f"{parts.scheme}://{parts.netloc}")
        sources += [f"{host}:*" for host in sorted(self.settings.allowed_origins)]
        return " ".join(sources)

    def url(self, console_type: str, token: str) -> str:
        """The URL a client opens: nova-novncproxy's page form for noVNC, the websocket itself for serial."""
        if console_type == "serial":
            base = self.base_url
            scheme, _, rest = base.partition("://")
            return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/?token={token}"
        return f"{self.base_url}/vnc_lite.html?path=%3Ftoken%3D{token}"

    async def issue(self, instance_id: str, console_type: str) -> str:
        """A new single-use URL for ``instance_id``'s console (the compute API checked the caller may have it)."""
        ttl = self.settings.token_ttl
        token = await self.write(lambda s: tokens.issue(s, instance_id, console_type, ttl, time.time()))
        return self.url(console_type, token)

    async def open(self, token: str) -> Target:
        """Spend ``token`` and find its console: TokenRefused for a bad, expired or used token; 409 when the
        instance has no console to reach now (gone, moved off, stopped)."""
        grant = await self.write(lambda s: tokens.consume(s, token, time.time()), attempts=1)
        compute = self.service("compute")
        endpoint = await asyncio.to_thread(compute.consoles.endpoint, grant.instance_id, grant.console_type)
        if endpoint is None:
            raise errors.Conflict(f"Instance {grant.instance_id} has no {grant.console_type} console now.")
        return Target(grant, endpoint.host, endpoint.path, endpoint.kind, endpoint.host in self.local_hosts,
                      endpoint.bridge)
