"""The volume node agent: reconciles the ``volume`` and ``snapshot`` documents it receives on ``agent.volume.<host>``
with the files its driver keeps, and reports status, capacity and heartbeats (docs/contracts.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from tinystack.config import Config
from tinystack.core.bus import Bus, SentReports
from tinystack.core.reconcile import Reconciler
from tinystack.core.svcauth import lazy_from_state_dir
from tinystack.volume import agent_settings
from tinystack.volume.agent_converge import Converge
from tinystack.volume.agent_records import Records, Spec, split_key
from tinystack.volume.drivers.base import Exporter, VolumeDriver
from tinystack.volume.drivers.fake import FakeExporter, FakeVolumeDriver

log = logging.getLogger(__name__)

BINARY = "tinystack-volume-agent"
TYPES = ("volume", "snapshot")
# A document received this recently survives a ``sync`` that does not name it: the sync may have been computed
# before the ``put`` that created it. Volumes are data, so be generous.
SYNC_GRACE = 10.0


class VolumeAgent(Converge):
    """Made of mixins, one module each: ``agent_converge`` (one resource to its document), ``agent_status``
    (its reports); ``agent_records`` keeps what the files cannot tell."""

    def __init__(self, bus: Bus, host: str, driver: VolumeDriver, records_dir: Path, *,
                 heartbeat_interval: float = 10.0, resync_interval: float = 30.0, source_timeout: float = 120.0,
                 poll_interval: float = 0.5, backend: str = "file",
                 backends: dict[str, VolumeDriver] | None = None, exporter: Exporter | None = None) -> None:
        """``driver`` is the default backend's (``backend``); ``backends`` the others, each by its name;
        ``exporter`` serves NBD exports of the volumes to other machines (None: this machine only)."""
        self.bus = bus
        self.host = host
        self.driver = driver
        self.default_backend = backend
        self.drivers: dict[str, VolumeDriver] = {backend: driver, **{k: v for k, v in (backends or {}).items()
                                                                     if k != backend}}
        self.exporter = exporter
        self.records = Records(records_dir)
        self.heartbeat_interval = heartbeat_interval
        self.source_timeout = source_timeout
        self.poll_interval = poll_interval
        self._specs: dict[str, tuple[int, Spec, float]] = {}
        self._doomed: dict[str, int | None] = {}  # to remove: the delete's generation, or None for garbage
        self._deleted: dict[str, int] = {}
        self._attempts: dict[tuple[str, int | None], int] = {}
        self._waiting: dict[tuple[str, int], float] = {}  # since when a generation waits for its source
        self._waiters: dict[str, set[str]] = {}  # source key -> keys waiting for it
        self._published = SentReports()
        self._doomed_names: dict[str, list[str]] = {}  # key -> other names its files have, for a volume to remove
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciler = Reconciler(f"volume-{host}", self._reconcile, self._list_keys,
                                     resync_interval=resync_interval)

    @property
    def topic(self) -> str:
        return f"agent.volume.{self.host}"

    # -- life cycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        for driver in self.drivers.values():
            await driver.init_host()
        self.bus.subscribe(self.topic, self._on_message)
        if self.exporter is not None:
            self.exporter.watch(self._exports_lost)
        await self.reconciler.start()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name=f"volume-heartbeat-{self.host}"))
        await self.bus.publish("resync.volume", {"host": self.host})

    async def stop(self, cleanup: bool) -> None:
        """Stop the tasks. Volumes are persistent data: even with ``cleanup`` no file is removed; the NBD exports
        outlive a plain stop (guests on other machines keep their disks while the agent restarts) and end with
        ``cleanup``."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.reconciler.stop()
        if cleanup and self.exporter is not None:
            await self.exporter.stop()

    def _exports_lost(self) -> None:
        """The export daemon died: every volume with exports is brought back to its document now (which starts
        the daemon again and adds the exports), not at the next resync."""
        if self._closing:
            return
        for key, (_, spec, _) in self._specs.items():
            if split_key(key)[0] == "volume" and spec.get("exports"):
                self.reconciler.enqueue(key)

    async def wait_idle(self) -> None:
        await self.reconciler.wait_idle()

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                cap = await self.driver.capacity()
                pools: dict[str, dict[str, int]] = {}
                for name, driver in self.drivers.items():
                    each = cap if driver is self.driver else await driver.capacity()
                    pools[name] = {"capacity_gb": each.capacity_gb, "free_gb": each.free_gb}
                await self.bus.publish("heartbeat", {"agent": "volume", "host": self.host, "time": time.time(),
                                                     "binary": BINARY, "capacity_gb": cap.capacity_gb,
                                                     "free_gb": cap.free_gb, "pools": pools})
            except Exception:
                log.exception("volume heartbeat failed")
            await asyncio.sleep(self.heartbeat_interval)

    async def _on_host(self) -> set[str]:
        """Every volume and snapshot file of every backend, by its key: a file where a document puts its volume
        (after a migration, named after ``name_id``) is that volume's; any other is ``volume:<its name>``."""
        owners = self._owners()
        keys: set[str] = set()
        for backend, driver in self.drivers.items():
            keys |= {owners.get((backend, i), f"volume:{i}") for i in await driver.list_volumes()}
            keys |= {f"snapshot:{i}" for i in await driver.list_snapshots()}
        return keys

    async def _list_keys(self) -> list[str]:
        self._published.refresh_due()
        return sorted(set(self._specs) | set(self._doomed) | await self._on_host())

    # -- messages -----------------------------------------------------------------------------------------

    async def _on_message(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "sync":
            types = [t for t in msg.get("types") or [] if t in TYPES]
            if types:
                ids = msg.get("ids") or {}
                await self._on_sync({f"{t}:{i}" for t in types for i in ids.get(t) or []}, set(types))
            return
        kind, rid = msg.get("type"), msg.get("id")
        if kind not in TYPES or not isinstance(rid, str) or not rid:
            return
        key, generation = f"{kind}:{rid}", int(msg.get("generation") or 0)
        current = self._specs.get(key)
        if current is not None and current[0] > generation:
            return  # an older message delivered late
        if op == "put":
            if self._deleted.get(key, -1) >= generation:
                return
            spec = dict(msg.get("spec") or {})
            spec["id"] = rid
            if current is not None and current[0] == generation and current[1] == spec:
                return  # delivered twice
            self._specs[key] = (generation, spec, time.monotonic())
            self._doomed.pop(key, None)
        elif op == "delete":
            if self._deleted.get(key, -1) >= generation:
                return
            if msg.get("names"):  # a migrated volume's files are named after their name_id
                self._doomed_names[key] = [str(n) for n in msg["names"]]
            self._specs.pop(key, None)
            self._deleted[key] = generation
            self._doomed[key] = generation
        else:
            return
        self.reconciler.enqueue(key)

    async def _on_sync(self, desired: set[str], types: set[str]) -> None:
        now = time.monotonic()
        for key, (_, _, received) in list(self._specs.items()):
            if split_key(key)[0] in types and key not in desired and now - received > SYNC_GRACE:
                self._specs.pop(key)
                self._doomed[key] = None
                self.reconciler.enqueue(key)
        for key in await self._on_host():
            if split_key(key)[0] in types and key not in desired and key not in self._specs:
                self._doomed.setdefault(key, None)
                self.reconciler.enqueue(key)
        if "volume" in types:
            # Exports of volumes no document names (an agent that died before ending them): their attachments
            # are gone. Those of volumes that are named are their own reconcile's business.
            await self._drop_exports()

    # -- reconcile ----------------------------------------------------------------------------------------


def build(config: Config, bus: Bus) -> VolumeAgent:
    """The agent ``tinystack up`` runs: settings from ``[volume]``, the configured driver for each backend."""
    settings = agent_settings.load(config)
    drivers: dict[str, VolumeDriver] = {}
    exporter: Exporter | None = None
    for name, path in settings.backends.items():
        if settings.driver == "fake":
            drivers[name] = FakeVolumeDriver(path=str(path))
        else:
            from tinystack.volume.drivers.file import FileDriver

            drivers[name] = FileDriver(path, lazy_from_state_dir(settings.state_dir), settings.host,
                                       image_timeout=settings.image_timeout)
    if settings.driver == "fake":
        exporter = FakeExporter()
    elif settings.nbd_host:
        from tinystack.volume.drivers.nbd import NbdServer

        # A short path: the QMP socket's must fit a unix socket name.
        exporter = NbdServer(settings.state_dir / f"nbd-{settings.host}", settings.nbd_host, settings.nbd_port,
                             settings.nbd_netns)
    default = next(iter(drivers))
    return VolumeAgent(bus, settings.host, drivers[default], settings.state_dir / "volume-agent" / settings.host,
                       heartbeat_interval=settings.heartbeat_interval, resync_interval=settings.resync_interval,
                       source_timeout=settings.source_timeout, backend=default, backends=drivers, exporter=exporter)
