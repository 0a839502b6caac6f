"""Service credentials for node agents: a cached, renewed Keystone token and catalog lookups over HTTP.

Agents never open the database; they talk to the APIs like any client, as the ``nova`` service user.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

# Renew this long before the token expires, so a request never carries a token about to lapse.
RENEW_BEFORE = dt.timedelta(minutes=5)

_KEYS = ("auth_url", "username", "password", "project_name", "user_domain_name", "project_domain_name")


class ServiceAuthError(RuntimeError):
    """The identity service refused the credentials or could not be reached."""


class ServiceAuth:
    def __init__(self, auth_url: str, username: str, password: str, project_name: str,
                 user_domain_name: str = "Default", project_domain_name: str = "Default") -> None:
        self.auth_url = auth_url.rstrip("/")
        self.username = username
        self.password = password
        self.project_name = project_name
        self.user_domain_name = user_domain_name
        self.project_domain_name = project_domain_name
        self._token: str | None = None
        self._expires: dt.datetime | None = None
        self._catalog: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    @classmethod
    def from_file(cls, path: Path) -> ServiceAuth:
        """Read ``service.yaml`` (written by the identity bootstrap, mode 0600)."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping")
        missing = [k for k in _KEYS[:4] if not data.get(k)]
        if missing:
            raise ValueError(f"{path}: missing {', '.join(missing)}")
        return cls(**{k: str(data[k]) for k in _KEYS if data.get(k)})

    def _versioned_url(self) -> str:
        return self.auth_url if self.auth_url.endswith("/v3") else f"{self.auth_url}/v3"

    def _fresh(self) -> bool:
        return (self._token is not None and self._expires is not None
                and dt.datetime.now(dt.UTC) < self._expires - RENEW_BEFORE)

    async def token(self) -> str:
        """A valid project-scoped token; issued once and reused until 5 minutes before it expires."""
        if self._fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._fresh():
                await self._issue()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (e.g. after a 401: it was revoked)."""
        self._token = None
        self._expires = None

    async def _issue(self) -> None:
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.username, "password": self.password, "domain": {"name": self.user_domain_name}}}},
            "scope": {"project": {"name": self.project_name, "domain": {"name": self.project_domain_name}}},
        }}
        timeout = aiohttp.ClientTimeout(total=30)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                    f"{self._versioned_url()}/auth/tokens", json=body) as resp:
                if resp.status != 201:
                    text = await resp.text()
                    raise ServiceAuthError(f"identity refused the service credentials ({resp.status}): {text[:200]}")
                token = resp.headers["X-Subject-Token"]
                doc = (await resp.json())["token"]
        except aiohttp.ClientError as exc:
            raise ServiceAuthError(f"identity at {self.auth_url} unreachable: {exc}") from exc
        self._token = token
        self._expires = dt.datetime.fromisoformat(doc["expires_at"].replace("Z", "+00:00"))
        self._catalog = list(doc.get("catalog") or [])

    async def endpoint(self, service_type: str, interface: str = "public") -> str:
        """The URL of ``service_type`` from the token's catalog (the first region that has it)."""
        await self.token()
        for entry in self._catalog:
            if entry.get("type") != service_type:
                continue
            for ep in entry.get("endpoints", []):
                if ep.get("interface") == interface:
                    return str(ep["url"]).rstrip("/")
        raise ServiceAuthError(f"no {interface} endpoint for service type {service_type!r} in the catalog")


def lazy_from_state_dir(state_dir: Path) -> Callable[[], ServiceAuth]:
    """The agents' credentials, read from ``STATE_DIR/service.yaml`` when first needed: the identity bootstrap
    writes it after the agents are built. Missing, it raises ``ServiceAuthError`` (agents retry that)."""
    cached: list[ServiceAuth] = []

    def get() -> ServiceAuth:
        if not cached:
            path = state_dir / "service.yaml"
            if not path.exists():
                raise ServiceAuthError(f"service credentials {path} are missing; cannot reach the image API")
            cached.append(ServiceAuth.from_file(path))
        return cached[0]

    return get


def write_file(path: Path, values: dict[str, str]) -> None:
    """Write a ``service.yaml`` readable only by its owner (bootstrap and tests)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump({k: values[k] for k in _KEYS if k in values}, f)
