"""The network controller: after every change it recomputes the affected documents, bumps a document's
generation (compare-and-swap) when its content or hosts changed, and publishes puts and deletes on
``agent.network.<host>``. It also answers ``resync.network``, applies ``status.network`` reports and records
``heartbeat``s.

Publishing is level-triggered (tinystack/core/desired.py): a change notification is only a hint. The database
keeps what each document's generation is and what of it went out (``published_generation``,
``published_hosts``); every ``[desired] sync_interval`` seconds, and at start, the controller recomputes every
document, publishes the ones that are ahead and sends every host its full set. A crash between a commit and its
publish costs a host one interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from tinystack.core.bus import Bus
from tinystack.network.controller_documents import EVENTS_TOPIC, Batch
from tinystack.network.controller_reports import Reports

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

log = logging.getLogger(__name__)


class Controller(Reports):
    """Made of mixins, one module each: ``controller_documents`` (compute, diff and send the documents) and
    ``controller_reports`` (the bus handlers)."""

    def __init__(self, svc: NetworkService, bus: Bus, metadata_socket: str) -> None:
        self.svc = svc
        self.bus = bus
        self.metadata_socket = metadata_socket
        # Change notifications not yet looked at: a hint (a crash loses it; the next full pass does not).
        self._hints: Changes = set()
        self._full = True  # the full pass: every document recomputed, every host sent its set
        self.sync_interval = svc.config.sync_interval
        self._lock = threading.Lock()
        self._reconcile_lock = threading.RLock()  # resync calls reconcile while holding its own lock
        self._resync_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._host: str | None = None
        svc.listeners.append(self.changed)
        svc.network_host = lambda: self._host

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._host = await asyncio.to_thread(self._latest_host)
        self.bus.subscribe("resync.network", self.on_resync, group="network")
        self.bus.subscribe("status.network", self.on_status, group="network")
        self.bus.subscribe("heartbeat", self.on_heartbeat)  # fan-out: each process follows the network host
        self._task = self._loop.create_task(self._run())
        self._timer = self._loop.create_task(self._every_interval())
        with self._lock:
            self._full = True
        self._kick()

    async def stop(self) -> None:
        for task in (self._timer, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._timer = None

    @property
    def network_host(self) -> str | None:
        return self._host

    # --- change notifications (from any thread) -----------------------------------------------

    def changed(self, changes: Changes) -> None:
        with self._lock:
            self._hints |= changes
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._kick)

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def settled(self, timeout: float = 30) -> None:
        """Wait until every change notified so far has been published (tests and benchmarks)."""
        await asyncio.sleep(0)
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            with self._lock:
                self._full = True
            self._kick()

    async def _run(self) -> None:
        """One task publishes, so a host's ``sync`` never overtakes a put computed after it in this process."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._lock:
                keys, self._hints = self._hints, set()
                full, self._full = self._full, False
            if not keys and not full:
                self._idle.set()
                continue
            try:
                if full:
                    await self._full_pass()
                if keys:
                    await self._send(await asyncio.to_thread(self.reconcile, keys))
                    for event in await asyncio.to_thread(self.port_events, keys):
                        await self.bus.publish(EVENTS_TOPIC, event)
            except Exception:
                log.exception("network controller: publishing failed; retrying")
                with self._lock:
                    self._hints |= keys
                    self._full |= full
                await asyncio.sleep(0.5)
                self._wake.set()
                continue
            with self._lock:
                if not self._hints and not self._full:
                    self._idle.set()

    async def _full_pass(self) -> None:
        """Every document recomputed (what a lost hint changed is found here), those ahead of what went out
        published, then every host sent its full set."""
        if self._host is None:
            # No live network host known yet (a restart, before the agents' heartbeats): recomputed now, DHCP and
            # router documents would lose their host and the old one would be told to remove them.
            return
        await self._send(await asyncio.to_thread(self.reconcile, await asyncio.to_thread(self.all_keys)))
        hosts = await asyncio.to_thread(self.known_hosts)
        for host in hosts:
            await self._send(Batch(messages=await asyncio.to_thread(self.host_sync, host)))
