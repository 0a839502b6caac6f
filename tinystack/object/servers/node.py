"""One storage node: its devices, the first rings (built at the first start from this node's devices, one zone
each, when it is alone: ring/bootstrap.py), the account, container and object servers on their ports, and the
updater that replays async pendings and reports container counts. ``tinystack up`` runs one beside the proxy;
``tinystack storage`` runs one alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import secrets
import socket
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from tinystack.object import local
from tinystack.object.ring.bootstrap import rings_to_build
from tinystack.object.servers.account import AccountServer
from tinystack.object.servers.auditor import audit_once
from tinystack.object.servers.base import IO_THREADS, NodeContext, build_app, serve_local
from tinystack.object.servers.container import ContainerServer
from tinystack.object.servers.dbreplicator import DbReplicator
from tinystack.object.servers.expirer import expire_once
from tinystack.object.servers.iothreads import IoThreads
from tinystack.object.servers.object import ObjectServer
from tinystack.object.servers.replicator import replicate_once
from tinystack.object.servers.updates import replay_pendings
from tinystack.object.settings import ObjectSettings

log = logging.getLogger(__name__)

KINDS = ("account", "container", "object")
CHECKPOINT_INTERVAL = 2.0  # seconds between passes that fold big SQLite WALs back (off the event loop)


def ring_path(settings: ObjectSettings, kind: str) -> Path:
    return settings.rings_dir / f"{kind}.ring"


def load_ring(settings: ObjectSettings, kind: str) -> Any:
    from tinystack.object.ring import Ring

    return Ring.load(ring_path(settings, kind), prefix=settings.hash_path_prefix, suffix=settings.hash_path_suffix)


def ring_names(settings: ObjectSettings) -> list[str]:
    """Every ring this cloud has: account, container and one object ring per storage policy."""
    return ["account", "container", *(p.ring for p in settings.policies)]


def server_of(ring: str) -> str:
    """The server kind a ring's devices are served by (every policy's object ring: the object server)."""
    return "object" if ring.startswith("object") else ring


def _ring_port(settings: ObjectSettings, kind: str) -> int:
    """This node's port in an existing ring (a port of 0 in the settings is picked once, then kept by the ring)."""
    path = ring_path(settings, kind)
    if not path.exists():
        return 0
    for dev in load_ring(settings, kind).devs:
        if dev is not None and dev.ip == settings.storage_ip:
            return int(dev.port)
    return 0


def _lasting_port(ip: str) -> int:
    """A free port for a server whose port 0 the rings will keep from now on (tests): one below the kernel's
    ephemeral range, so that when the node starts again no outgoing connection (whose source ports come from that
    range) can be holding it. 0 (any port) if none is found."""
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    floor = 10000
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    for _ in range(64):
        port = floor + secrets.randbelow(max(1, ephemeral - floor))
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((ip, port))
            return port
    return 0


def build_ring(settings: ObjectSettings, kind: str, port: int) -> None:
    """The first ring of ``kind``: ``device_count`` devices of this node, each in a zone of its own (an object
    ring with its policy's replica count)."""
    from tinystack.object.ring import RingBuilder

    settings.rings_dir.mkdir(parents=True, exist_ok=True)
    replicas = next((p.replicas for p in settings.policies if p.ring == kind), settings.replicas)
    builder = RingBuilder(settings.part_power, float(replicas), settings.min_part_hours)
    for i in range(settings.device_count):
        builder.add_dev({"region": 1, "zone": i + 1, "ip": settings.storage_ip, "port": port,
                         "device": f"d{i + 1}", "weight": 100.0})
    builder.rebalance(seed=1)
    builder.save(settings.rings_dir / f"{kind}.builder")
    builder.write_ring(ring_path(settings, kind))


def build_rings(settings: ObjectSettings, kinds: list[tuple[str, int]]) -> None:
    """Blocking: ``build_ring`` for each (kind, port)."""
    for kind, port in kinds:
        build_ring(settings, kind, port)


async def build_rings_apart(settings: ObjectSettings, kinds: list[tuple[str, int]]) -> None:
    """The first rings, built in a child process: the builder's modules and numpy (some 13 MB) would otherwise
    stay in this long-lived process for the one time they are needed. Spawned rather than forked, as this
    process already runs threads."""
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        await asyncio.get_running_loop().run_in_executor(pool, build_rings, settings, kinds)
    finally:
        await asyncio.to_thread(pool.shutdown)


class StorageNode:
    def __init__(self, settings: ObjectSettings, build_rings: bool = True) -> None:
        """``build_rings``: may build missing rings from this node's devices when it is alone (``tinystack up``;
        ``tinystack storage`` may not: ring/bootstrap.py)."""
        self.settings = settings
        self.build_rings = build_rings
        self.node = NodeContext(settings)
        self.account = AccountServer(self.node)
        self.container = ContainerServer(self.node)
        self.object = ObjectServer(self.node)
        self.db_replicators = {"account": DbReplicator(self.node, "account", self.account.brokers),
                               "container": DbReplicator(self.node, "container", self.container.brokers)}
        self._runners: list[web.AppRunner] = []
        self._updater: asyncio.Task[None] | None = None
        self._daemons: list[asyncio.Task[None]] = []
        self.ports: dict[str, int] = {}
        self._updated = time.monotonic()

    async def start(self) -> None:
        s = self.settings
        object_handlers = self.object.handlers()
        apps = {"account": self.account.app(), "container": self.container.app(), "object": build_app(object_handlers)}
        wanted = {"account": s.account_port, "container": s.container_port, "object": s.object_port}
        for kind in KINDS:
            port = wanted[kind] or _ring_port(s, kind) or _lasting_port(s.storage_ip)
            runner = web.AppRunner(apps[kind], access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, s.storage_ip, port, reuse_address=True)
            await site.start()
            self._runners.append(runner)
            self.ports[kind] = runner.addresses[-1][1]
        own = {kind: (s.storage_ip, self.ports[server_of(kind)]) for kind in ring_names(s)}
        missing = await asyncio.to_thread(rings_to_build, s.rings_dir, own, self.build_rings)
        if missing:
            await build_rings_apart(s, [(kind, own[kind][1]) for kind in missing])
        for kind in ring_names(s):
            self.node.rings[kind] = load_ring(s, kind)
        for kind in ring_names(s):
            for dev in self.node.rings[kind].devs:
                if dev is not None and dev.ip == s.storage_ip and dev.port == self.ports[server_of(kind)]:
                    (s.devices / dev.device).mkdir(parents=True, exist_ok=True)
        # A proxy in this process hands object requests to the same handlers directly (local.py).
        local.serve(s.storage_ip, self.ports["object"], serve_local(object_handlers))
        # And its object servers hand container updates to this node's container server directly (updates.py).
        local.serve_updates(s.storage_ip, self.ports["container"], self.container.apply_updates)
        loop = asyncio.get_running_loop()
        self._updater = loop.create_task(self._update_loop())
        for name, interval in (("replicator", s.replicator_interval), ("auditor", s.auditor_interval),
                               ("expirer", s.expirer_interval), ("account-replicator", s.replicator_interval),
                               ("container-replicator", s.replicator_interval)):
            if interval > 0:
                self._daemons.append(loop.create_task(self._daemon_loop(name, interval)))
        log.info("storage node on %s: %s", s.storage_ip, self.ports)

    async def _update_loop(self) -> None:
        while True:
            await asyncio.sleep(min(self.settings.updater_interval, CHECKPOINT_INTERVAL))
            try:
                for brokers in (self.container.brokers, self.account.brokers):
                    await asyncio.to_thread(brokers.checkpoint)
                now = time.monotonic()
                if now - self._updated >= self.settings.updater_interval:
                    self._updated = now
                    await self.container.flush()
                    await replay_pendings(self.node)
            except Exception:
                log.exception("object updater pass failed")

    async def run_once(self, name: str) -> Any:
        """One pass of a background daemon ("replicator", "account-replicator", "container-replicator", "auditor",
        "expirer"); its stats."""
        port = self.ports["object"]
        if name == "replicator":
            return await replicate_once(self.node, port)
        if name in ("account-replicator", "container-replicator"):
            kind = name.split("-", 1)[0]
            return await self.db_replicators[kind].replicate_once(self.ports[kind])
        if name == "auditor":
            return await audit_once(self.node, port)
        if name == "expirer":
            return await expire_once(self.node, port)
        raise ValueError(f"no daemon {name!r}")

    async def _daemon_loop(self, name: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once(name)
            except Exception:
                log.exception("object %s pass failed", name)

    async def stop(self) -> None:
        if "object" in self.ports:
            local.stop_serving(self.settings.storage_ip, self.ports["object"])
        if "container" in self.ports:
            local.stop_serving_updates(self.settings.storage_ip, self.ports["container"])
        for task in self._daemons:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._daemons.clear()
        if self._updater is not None:
            self._updater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._updater
            self._updater = None
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self.node.updates is not None:
            await self.node.updates.close()
            self.node.updates = None
        await self.container.close()
        await self.account.close()
        if self.node.session is not None:
            await self.node.session.close()
        # Its threads end once idle work is done; a node started again gets a fresh pool (made lazily).
        self.node.io.shutdown()
        self.node.io = IoThreads(IO_THREADS, "object-io")
