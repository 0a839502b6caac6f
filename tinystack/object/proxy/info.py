"""What the proxy knows of accounts and containers (existence, counts, metadata, ACLs), read from the storage
servers and kept for a few seconds: every object request needs its container's, and the ACL and quota middleware
read it too."""

from __future__ import annotations

import time
from typing import Any

from tinystack.object.policies import INDEX_HEADER
from tinystack.object.proxy.backend import Answer, Backend


def _meta(headers: Any, prefix: str) -> dict[str, str]:
    return {k.lower()[len(prefix):]: v for k, v in headers.items() if k.lower().startswith(prefix)}


def container_info(answer: Answer) -> dict[str, Any]:
    h = answer.headers
    return {"status": answer.status, "object_count": int(h.get("X-Container-Object-Count", 0)),
            "bytes": int(h.get("X-Container-Bytes-Used", 0)), "read_acl": h.get("X-Container-Read", ""),
            "write_acl": h.get("X-Container-Write", ""), "meta": _meta(h, "x-container-meta-"),
            "sysmeta": _meta(h, "x-container-sysmeta-"), "versions": h.get("X-Versions-Location", ""),
            "history": h.get("X-History-Location", ""), "policy": int(h.get(INDEX_HEADER, 0) or 0)}


def account_info(answer: Answer) -> dict[str, Any]:
    h = answer.headers
    return {"status": answer.status, "container_count": int(h.get("X-Account-Container-Count", 0)),
            "object_count": int(h.get("X-Account-Object-Count", 0)), "bytes": int(h.get("X-Account-Bytes-Used", 0)),
            "meta": _meta(h, "x-account-meta-"), "sysmeta": _meta(h, "x-account-sysmeta-")}


class InfoCache:
    def __init__(self, backend: Backend, ttl: float) -> None:
        self.backend = backend
        self.ttl = ttl
        self._cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}

    async def get(self, *names: str) -> dict[str, Any]:
        """The info of the account (one name) or container (two names); ``status`` 404 when it does not exist."""
        key = tuple(names)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        kind = "account" if len(names) == 1 else "container"
        answer = await self.backend.read(kind, "HEAD", key, {})
        info = account_info(answer) if kind == "account" else container_info(answer)
        # Only what exists is kept: a container made through another proxy is seen at once.
        if answer.status < 300:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = (now + self.ttl, info)
        return info

    def forget(self, *names: str) -> None:
        self._cache.pop(tuple(names), None)
