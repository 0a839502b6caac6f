"""The dashboard's way to the cloud: the public APIs, found through the token's catalog, called with the user's
own token. One small typed wrapper per call shape; every error comes back as ``ApiError`` with the API's message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

# Microversions the pages are written against (the fields they show exist from these on).
HEADERS = {
    "compute": {"OpenStack-API-Version": "compute 2.79", "X-OpenStack-Nova-API-Version": "2.79"},
    "volumev3": {"OpenStack-API-Version": "volume 3.60"},
    "block-storage": {"OpenStack-API-Version": "volume 3.60"},
}


class ApiError(Exception):
    """An API answered with an error: its status and the message its fault body gave."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def fault_message(status: int, text: str) -> str:
    """The human message of any OpenStack fault format (Keystone, Nova/Cinder, Neutron, Placement, plain)."""
    try:
        body = json.loads(text)
    except ValueError:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"HTTP {status}"
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return str(value[0].get("detail") or value[0].get("title") or value)
    return f"HTTP {status}: {text[:200]}"


def endpoints(catalog: list[dict[str, Any]], region: str | None = None) -> dict[str, str]:
    """Public endpoint URL by service type."""
    out: dict[str, str] = {}
    for service in catalog:
        for ep in service.get("endpoints", []):
            if ep.get("interface") == "public" and (region is None or ep.get("region_id", ep.get("region")) == region):
                out.setdefault(service["type"], ep["url"].rstrip("/"))
    return out


@dataclass
class Api:
    """Calls the cloud as one user: ``http`` is the dashboard's shared client session."""

    http: aiohttp.ClientSession
    token: str
    urls: dict[str, str] = field(default_factory=dict)

    def url(self, service: str) -> str:
        names = {"volume": ("block-storage", "volumev3"), "identity": ("identity",)}.get(service, (service,))
        for name in names:
            if name in self.urls:
                return self.urls[name]
        raise ApiError(503, f"The {service} service is not in your catalog.")

    async def call(self, method: str, service: str, path: str, body: Any = None,
                   params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                   raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
        hdrs = {"X-Auth-Token": self.token, "Accept": "application/json"}
        for name in (service, "block-storage" if service == "volume" else ""):
            hdrs.update(HEADERS.get(name, {}))
        hdrs.update(headers or {})
        data: bytes | None = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.url(service) + path, data=data, params=params, headers=hdrs) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise ApiError(resp.status, fault_message(resp.status, text))
            parsed = json.loads(text) if text and resp.content_type.endswith("json") else text
            return resp.status, dict(resp.headers), parsed

    async def fetch(self, method: str, service: str, path: str, params: dict[str, str] | None = None,
                    headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        """A call whose answer is bytes, not JSON (an object's content; the object store's metadata calls)."""
        hdrs = {"X-Auth-Token": self.token, **(headers or {})}
        async with self.http.request(method, self.url(service) + path, data=data, params=params, headers=hdrs) as resp:
            content = await resp.read()
            if resp.status >= 400:
                raise ApiError(resp.status, fault_message(resp.status, content.decode("utf-8", "replace")))
            return resp.status, dict(resp.headers), content

    async def get(self, service: str, path: str, params: dict[str, str] | None = None) -> Any:
        return (await self.call("GET", service, path, params=params))[2]

    async def post(self, service: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return (await self.call("POST", service, path, body=body, headers=headers))[2]

    async def put(self, service: str, path: str, body: Any = None) -> Any:
        return (await self.call("PUT", service, path, body=body))[2]

    async def patch(self, service: str, path: str, body: Any, content_type: str) -> Any:
        raw = json.dumps(body).encode()
        return (await self.call("PATCH", service, path, raw=raw, headers={"Content-Type": content_type}))[2]

    async def delete(self, service: str, path: str) -> None:
        await self.call("DELETE", service, path)
