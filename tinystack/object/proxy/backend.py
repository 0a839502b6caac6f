"""The proxy's side of the backend protocol: which devices hold a path (primaries, then handoffs, skipping devices
that failed a moment ago), one request to one device, and the quorum of a write. A device whose server runs in
this process is reached through its handlers directly (``local.py``), every other one over HTTP."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tinystack.object import local
from tinystack.object.common import quote_path
from tinystack.object.local import LocalRequest, LocalResponse
from tinystack.object.settings import ObjectSettings

log = logging.getLogger(__name__)

ERROR_SUPPRESSION = 10.0  # seconds a device that refused a connection is skipped
RING_CHECK = 10.0


@dataclass
class Answer:
    """One backend's reply (the body read when it is small, or the live response to stream)."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    device: Any = None


# A backend answer being read: over HTTP, or from a storage server in this process.
Opened = aiohttp.ClientResponse | LocalResponse


def quorum(replicas: int) -> int:
    return replicas // 2 + 1


class Backend:
    def __init__(self, settings: ObjectSettings) -> None:
        self.s = settings
        self.rings: dict[str, Any] = {}
        self._mtimes: dict[str, float] = {}
        self._checked = 0.0
        self._errors: dict[tuple[str, int, str], float] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.s.conn_timeout, sock_read=self.s.node_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False,
                                                  connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def ring(self, kind: str) -> Any:
        """The ring, reloaded when its file changed (an operator's rebalance reaches a running proxy)."""
        now = time.monotonic()
        if kind not in self.rings or now - self._checked > RING_CHECK:
            self._checked = now
            from tinystack.object.ring import Ring

            for name in {"account", "container", "object", *self.rings, kind}:
                path = self.s.rings_dir / f"{name}.ring"
                mtime = os.stat(path).st_mtime
                if self._mtimes.get(name) != mtime:
                    self.rings[name] = Ring.load(path, prefix=self.s.hash_path_prefix, suffix=self.s.hash_path_suffix)
                    self._mtimes[name] = mtime
        return self.rings[kind]

    def nodes(self, kind: str, account: str, container: str | None = None,
              obj: str | None = None) -> tuple[int, list[Any], Iterator[Any]]:
        ring = self.ring(kind)
        part, primaries = ring.get_nodes(account, container, obj)
        return part, primaries, ring.get_more_nodes(part)

    def replicas(self, kind: str) -> int:
        return int(self.ring(kind).replica_count)

    def limited(self, dev: Any) -> bool:
        until = self._errors.get((dev.ip, dev.port, dev.device))
        return until is not None and until > time.monotonic()

    def error(self, dev: Any) -> None:
        self._errors[(dev.ip, dev.port, dev.device)] = time.monotonic() + ERROR_SUPPRESSION

    def targets(self, primaries: list[Any], handoffs: Iterator[Any], count: int) -> list[Any]:
        """``count`` devices to write to: the primaries that are up, then handoffs in their place."""
        out = [d for d in primaries if not self.limited(d)]
        while len(out) < count:  # checked before taking a handoff: one taken and dropped is lost to the retries
            dev = next(handoffs, None)
            if dev is None:
                break
            if not self.limited(dev):
                out.append(dev)
        return out[:count]

    def url(self, dev: Any, part: int, *names: str) -> str:
        return f"http://{dev.ip}:{dev.port}" + quote_path(dev.device, str(part), *names)

    async def call(self, dev: Any, method: str, part: int, names: tuple[str, ...], headers: Mapping[str, str],
                   body: Any = None, query: Mapping[str, str] | None = None) -> Answer:
        """One request; a device that cannot be reached answers 503 (and is skipped for a while)."""
        served = local.served(dev.ip, dev.port)
        if served is not None:
            try:
                mine = LocalResponse(await self._local(served, LocalRequest(method, dev.device, part, names, headers,
                                                                            body, query)), method)
            except TimeoutError:
                log.warning("%s %s on %s:%s/%s failed: no answer in %ss", method, "/".join(names), dev.ip, dev.port,
                            dev.device, self.s.node_timeout)
                self.error(dev)
                return Answer(503, {}, b"", dev)
            return Answer(mine.status, mine.headers, await mine.read(), dev)
        try:
            # No automatic Content-Type: an object POST without one must leave the object's as it is.
            async with self.session.request(method, self.url(dev, part, *names), headers=dict(headers), data=body,
                                            params=query, skip_auto_headers=("Content-Type",)) as resp:
                data = await resp.read()
                return Answer(resp.status, resp.headers.copy(), data, dev)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("%s %s on %s:%s/%s failed: %s", method, "/".join(names), dev.ip, dev.port, dev.device, exc)
            self.error(dev)
            return Answer(503, {}, b"", dev)

    async def open(self, dev: Any, method: str, part: int, names: tuple[str, ...],
                   headers: Mapping[str, str]) -> Opened | None:
        """A response left open for streaming (the caller releases it); None when the device is unreachable."""
        served = local.served(dev.ip, dev.port)
        if served is not None:
            try:
                return LocalResponse(await self._local(served, LocalRequest(method, dev.device, part, names, headers)),
                                     method)
            except TimeoutError:
                log.warning("%s on %s:%s/%s failed: no answer in %ss", method, dev.ip, dev.port, dev.device,
                            self.s.node_timeout)
                self.error(dev)
                return None
        try:
            return await self.session.request(method, self.url(dev, part, *names), headers=dict(headers))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("%s on %s:%s/%s failed: %s", method, dev.ip, dev.port, dev.device, exc)
            self.error(dev)
            return None

    async def _local(self, served: local.Served, request: LocalRequest) -> web.StreamResponse:
        """A request to a server of this process, with what HTTP gives: an answer within ``node_timeout`` (else
        TimeoutError), and a server that finishes a write it started when the proxy stops waiting for it. A body
        given as pieces is the exception: the server reads them as the caller produces them, so it waits as long
        as the caller feeds it and stops with it (as a server whose client went away)."""
        if request.content.streamed:
            return await served(request)
        if request.method in ("GET", "HEAD"):
            # A read has nothing to finish once nobody waits for it: no task and shield to let it run on, and an
            # answer from the kernel's caches (servers/object.py) comes back in this very step of the loop.
            async with asyncio.timeout(self.s.node_timeout):
                return await served(request)
        task = asyncio.ensure_future(served(request))
        task.add_done_callback(_retrieve)
        async with asyncio.timeout(self.s.node_timeout):
            return await asyncio.shield(task)

    async def read(self, kind: str, method: str, names: tuple[str, ...], headers: Mapping[str, str],
                   query: Mapping[str, str] | None = None) -> Answer:
        """Primaries in turn, then handoffs, until one answers other than 404/5xx; else the most telling answer."""
        part, primaries, handoffs = self.nodes(kind, *names)
        answers: list[Answer] = []
        tried = 0
        for dev in [*primaries, *handoffs]:
            if tried >= 2 * len(primaries):
                break
            if self.limited(dev) and tried < len(primaries) - 1:
                continue
            tried += 1
            answer = await self.call(dev, method, part, names, headers, query=query)
            if answer.status < 400 or answer.status in (412, 416):
                return answer
            answers.append(answer)
            if answer.status == 507:
                self.error(dev)
        return best_failure(answers)

    async def write(self, kind: str, method: str, names: tuple[str, ...], headers: Mapping[str, str],
                    per_node: list[dict[str, str]] | None = None) -> list[Answer]:
        """The same bodiless request to every primary (a handoff for each that fails)."""
        part, primaries, handoffs = self.nodes(kind, *names)
        count = len(primaries)
        targets = self.targets(primaries, handoffs, count)
        extra = per_node or [{} for _ in range(count)]

        async def one(i: int, dev: Any) -> Answer:
            answer = await self.call(dev, method, part, names, {**headers, **extra[i % len(extra)]})
            while answer.status >= 500:
                spare = next((d for d in handoffs if not self.limited(d)), None)
                if spare is None:
                    break
                answer = await self.call(spare, method, part, names, {**headers, **extra[i % len(extra)]})
            return answer

        return list(await asyncio.gather(*(one(i, d) for i, d in enumerate(targets))))


def _retrieve(task: asyncio.Future[Any]) -> None:
    # A server's answer nobody waited for any more (the proxy gave up on it): its error is not left unretrieved.
    if not task.cancelled() and task.exception() is not None:
        log.warning("in-process backend request failed after the proxy stopped waiting: %s", task.exception())


def best_failure(answers: list[Answer]) -> Answer:
    if not answers:
        return Answer(503, {})
    for status in (404, 409, 412, 416, 422):
        found = [a for a in answers if a.status == status]
        if found:
            return found[0]
    return Answer(503, {})


def write_status(answers: list[Answer], replicas: int) -> int:
    """The status a write reaches a quorum on (Swift's best response): success, else the commonest failure."""
    need = quorum(replicas)
    counts: dict[int, int] = {}
    for a in answers:
        cls = a.status // 100 * 100
        counts[cls] = counts.get(cls, 0) + 1
    if counts.get(200, 0) >= need:
        return max(a.status for a in answers if a.status < 300)
    for status in (404, 409, 412, 422, 499):
        if sum(1 for a in answers if a.status == status) >= need:
            return status
    if any(a.status == 422 for a in answers):
        return 422
    if any(a.status == 499 for a in answers):
        return 499
    return 503
