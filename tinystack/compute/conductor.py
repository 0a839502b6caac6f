"""The conductor: turns written desired state into work. It schedules and claims (placement), binds ports
(network), publishes ``instance`` docs to ``agent.compute.<host>`` and folds the agents' ``status.compute``
reports, ``node`` docs, heartbeats and resync requests back into the tables (docs/contracts.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from tinystack.compute import states
from tinystack.compute.admin import Admin
from tinystack.compute.bootvolumes import BootVolumes
from tinystack.compute.conductor_build import Building
from tinystack.compute.conductor_delete import service_context
from tinystack.compute.conductor_publish import BUILD_TASKS
from tinystack.compute.conductor_reports import Reports
from tinystack.compute.livemigration import LiveMigrations
from tinystack.compute.models import ComputeNode, Instance
from tinystack.compute.netbind import NetBinder
from tinystack.compute.placing import Placer
from tinystack.compute.volumes import Volumes
from tinystack.core import desired
from tinystack.core.auth import RequestContext
from tinystack.core.bus import Bus
from tinystack.core.db import Database
from tinystack.core.lease import Lease, Singleton

# The tests import service_context from here, the conductor's one entry point.
__all__ = ["Conductor", "service_context"]

log = logging.getLogger(__name__)


class Conductor(Building, Reports):
    """Made of mixins, one module each: ``conductor_publish`` (the instance document and the publisher's work),
    ``conductor_delete``, ``conductor_build`` (and unshelve, port rebinding), ``conductor_reports``."""

    def __init__(self, *, db: Database, bus: Bus, placer: Placer, net: NetBinder, hosts: Admin, volumes: Volumes,
                 bootvolumes: BootVolumes, config_drive_files: Callable[[Instance], dict[str, Any]],
                 console_log_max_bytes: int, sync_interval: float, orphan_build_after: float = 300,
                 build_timeout: float = 0) -> None:
        self.db = db
        self.session = db.session
        self.bus = bus
        self.placer = placer
        self.net = net
        self.hosts = hosts
        self.volumes = volumes
        self.bootvolumes = bootvolumes
        self.config_drive_files = config_drive_files
        self.console_log_max_bytes = console_log_max_bytes
        self.orphan_build_after = orphan_build_after
        self.build_timeout = build_timeout
        self.live = LiveMigrations(db.session, bus, placer, net, self)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._building: set[str] = set()
        self._started = False
        # Level-triggered: the work list is the instances whose generation is ahead of what went out, plus a
        # full sync of every host each interval; ``publish_soon`` only hurries a key along.
        self.publisher = desired.Publisher("compute", self._publish_key, self._pending, self._sync,
                                           interval=sync_interval)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        bus = self.bus
        bus.subscribe("status.compute", self.on_status, group="compute")
        bus.subscribe("resync.compute", self.on_resync, group="compute")
        bus.subscribe("heartbeat", self.on_heartbeat, group="compute")  # recorded in the database
        bus.subscribe("events.network", self.on_network_event, group="compute")  # docs/contracts.md: network-changed
        self.hosts.heartbeat_self()
        self._spawn(self._housekeeping())
        # Builds interrupted by a restart of the API process: pick them up again.
        with self.session() as s:
            pending = list(s.scalars(select(Instance.id).where(
                Instance.deleted.is_(False), Instance.vm_state == states.BUILDING,
                Instance.task_state.in_(BUILD_TASKS))).all())
        if pending:
            self.build(pending)
        await self.publisher.start()

    async def _sync(self) -> None:
        """The publisher's periodic pass: every host gets all it should hold; addresses follow floating IPs."""
        await self._sync_hosts()
        await self.sync_addresses()

    async def stop(self) -> None:
        await self.publisher.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait for every build and publish started so far (tests, benchmarks)."""
        while True:
            await self.publisher.wait_idle()
            busy = [t for t in self._tasks if t.get_name() != "housekeeping"]
            if not busy:
                return
            await asyncio.gather(*busy, return_exceptions=True)

    async def _housekeeping(self) -> None:
        asyncio.current_task().set_name("housekeeping")  # type: ignore[union-attr]
        # Each API process reports its own conductor and scheduler; finishing deletes is the cloud's work, done
        # by the one process holding the lease (design §7).
        deletes = Singleton(Lease(self.db, "compute.finish-deletes"), self._finish_deletes_on_down_hosts, 10,
                            first_after=10)
        self._spawn(deletes.run()).set_name("housekeeping")
        # Builds past build_timeout, and builds an API process began and died before publishing (split roles,
        # docs/deployment.md).
        orphans = Singleton(Lease(self.db, "compute.orphan-builds"),
                            lambda: self.sweep_builds(self.orphan_build_after, self.build_timeout),
                            min(30.0, self.orphan_build_after / 2), first_after=5)
        self._spawn(orphans.run()).set_name("housekeeping")
        self._spawn(self._renewing()).set_name("housekeeping")
        while True:
            await asyncio.sleep(10)
            try:
                self.hosts.heartbeat_self()
                # Live migrations past their deadlines, whichever process started them (livemigration.py).
                await self.live.abort_expired()
            except Exception:
                log.exception("compute housekeeping failed")

    async def _renewing(self) -> None:
        """Marks the builds this process holds (``renew_builds``) three times per ``orphan_build_after``, at most
        every 10 s: a loaded process's event loop can stall for seconds, and one late mark lets the sweep take
        a build this process is still making and place it a second time."""
        every = max(1.0, min(10.0, self.orphan_build_after / 3))
        while True:
            await asyncio.sleep(every)
            try:
                self.renew_builds()
            except Exception:
                log.exception("renewing this process's builds failed")

    # --- validation helpers the API calls -------------------------------------------------------

    def validate_networks(self, ctx: RequestContext, networks: Any) -> Any:
        return self.net.validate(ctx, networks)

    def validate_security_groups(self, ctx: RequestContext, names: list[str], networks: Any) -> None:
        self.net.validate_security_groups(ctx, names, networks)

    def node_hosts(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(ComputeNode.host)).all())
