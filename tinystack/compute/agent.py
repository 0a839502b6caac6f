"""The compute node agent: reconciles the ``instance`` documents it receives on ``agent.compute.<host>``
with the guests its driver runs, and reports status, node capacity and heartbeats (docs/contracts.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

from tinystack.compute import agent_settings
from tinystack.compute.agent_console import NodeBridge
from tinystack.compute.agent_converge import Converge
from tinystack.compute.agent_moves import Moves
from tinystack.compute.agent_records import Record, Records, guest_states
from tinystack.compute.agent_status import VM_FOR_POWER
from tinystack.compute.drivers.base import CRASHED, NOSTATE, ComputeDriver, DriverError, Spec
from tinystack.compute.drivers.fake import FakeDriver, shared_storage
from tinystack.config import Config
from tinystack.core import consolebridge, metrics
from tinystack.core.bus import Bus
from tinystack.core.reconcile import DONE, Reconciler, Result
from tinystack.core.svcauth import lazy_from_state_dir
from tinystack.guest import build as guest_build
from tinystack.guest import settings as guest_settings

log = logging.getLogger(__name__)

BINARY = "tinystack-compute-agent"
# Transient failures (image API down, a tap not there yet) are retried this many times per generation
# before the instance goes to ERROR; permanent ones go at once.
MAX_ATTEMPTS = 3
# A spec received this recently survives a ``sync`` that does not name it: the sync may have been
# computed before the ``put`` that created it.
SYNC_GRACE = 5.0


class ComputeAgent(Converge, Moves):
    """The agent of one node; its parts are the mixins it is made of: ``agent_status`` (reports),
    ``agent_converge`` (one guest to its document), ``agent_moves`` (between nodes)."""

    def __init__(self, bus: Bus, host: str, driver: ComputeDriver, records_dir: Path, *,
                 power_off_timeout: float = 10.0, heartbeat_interval: float = 10.0,
                 resync_interval: float = 30.0, migration_address: str = "", migration_timeout: float = 300.0,
                 volume_detach_attempts: int = 1, instances_path: Path | None = None) -> None:
        self.bus = bus
        self.host = host
        self.driver = driver
        self.records = Records(records_dir)
        self.power_off_timeout = power_off_timeout
        self.heartbeat_interval = heartbeat_interval
        self.migration_address = migration_address
        self.migration_timeout = migration_timeout
        self.volume_detach_attempts = volume_detach_attempts
        self.instances_path = instances_path
        self.console_address = ""  # the console bridge's, while it serves (serve_console_bridge)
        self._console_bridge: NodeBridge | None = None
        self._bridge_settings: tuple[str, bytes] | None = None  # (listen, key) to serve from start on
        self._detach_refused: dict[str, dict[str, str]] = {}  # instance -> volume -> why the guest kept it
        self._handover: dict[str, str] = {}  # instance -> the host a delete hands it to (a cold move)
        self._waiting: dict[tuple[str, int], float] = {}  # cold move in: since when the files are awaited
        self._sent: set[str] = set()  # live migrations this node has tried to send (never twice)
        # Live migrations this node listens for, and on what URI: a newer document during the transfer (the
        # files' owner is still the source, so the guest does not look arrived) must not prepare again.
        self._listening: dict[str, str] = {}
        self._specs: dict[str, tuple[int, Spec, float]] = {}
        self._doomed: dict[str, int | None] = {}  # to destroy: delete generation, or None for an orphan
        self._deleted: dict[str, int] = {}
        self._attempts: dict[tuple[str, int], int] = {}
        self._published: dict[str, str] = {}
        self._closing = False
        self._node_doc: str | None = None
        self._node_sent = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciler = Reconciler(f"compute-{host}", self._reconcile, self._list_keys,
                                     resync_interval=resync_interval)

    @property
    def topic(self) -> str:
        return f"agent.compute.{self.host}"

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.driver.init_host()
        self.bus.subscribe(self.topic, self._on_message)
        await self.reconciler.start()
        if self._bridge_settings is not None:
            await self.serve_console_bridge(*self._bridge_settings)
        await self._publish_node()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name=f"compute-heartbeat-{self.host}"))
        self._guest_metrics = metrics.GUESTS.add(partial(guest_states, self.host, self.records))
        await self.bus.publish("resync.compute", {"host": self.host})

    async def stop(self, cleanup: bool) -> None:
        # From here on the agent reports nothing: guests it powers off now are not "stopped by the user"
        # (the desired state still says running, and the next start brings them back).
        self._closing = True
        metrics.GUESTS.remove(getattr(self, "_guest_metrics", 0))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.stop_console_bridge()
        await self.reconciler.stop()
        if cleanup:
            # Guests come back when the cloud starts again: their disks stay, the record says why they are off.
            for instance_id in await self.driver.list_instances():
                record = self.records.load(instance_id)
                if record is not None:
                    record.host_stopped = True
                    self.records.save(instance_id, record)
        await self.driver.close(stop_guests=cleanup)

    # -- the console bridge (split deployment) ------------------------------------------------------

    def console_bridge(self, listen: str, key: bytes) -> None:
        """Serve this node's consoles on ``listen`` from ``start`` on, to proxies holding ``key``."""
        self._bridge_settings = (listen, key)

    async def serve_console_bridge(self, listen: str, key: bytes) -> str:
        """Start the node console bridge now and report its address with the node; returns the address."""
        await self.stop_console_bridge()
        if self.instances_path is None:
            raise ValueError("the console bridge needs the node's instances path")
        bridge = NodeBridge(self.host, key, listen, self.instances_path, self._holds,
                            advertise_host=self.migration_address)
        await bridge.start()
        self._console_bridge, self.console_address = bridge, bridge.address
        await self._publish_node()
        return bridge.address

    async def stop_console_bridge(self) -> None:
        if self._console_bridge is not None:
            await self._console_bridge.stop()
            self._console_bridge, self.console_address = None, ""

    async def _holds(self, instance_id: str) -> bool:
        """Whether ``instance_id`` is this node's: its desired state is here and the driver runs it here."""
        return instance_id in self._specs and instance_id in await self.driver.list_instances()

    async def wait_idle(self) -> None:
        await self.reconciler.wait_idle()

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.bus.publish("heartbeat", {"agent": "compute", "host": self.host, "time": time.time(),
                                                     "binary": BINARY})
                await self._publish_node()
            except Exception:
                log.exception("compute heartbeat failed")
            await asyncio.sleep(self.heartbeat_interval)

    async def _list_keys(self) -> list[str]:
        return sorted(set(self._specs) | set(self._doomed) | set(await self.driver.list_instances()))

    # -- messages -----------------------------------------------------------------------------------

    async def _on_message(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "sync":
            if "instance" in (msg.get("types") or []):
                await self._on_sync(set((msg.get("ids") or {}).get("instance") or []))
            return
        if msg.get("type") != "instance" or not isinstance(msg.get("id"), str):
            return
        instance_id, generation = msg["id"], int(msg.get("generation") or 0)
        current = self._specs.get(instance_id)
        if current is not None and current[0] > generation:
            return  # an older message delivered late
        if op in ("put", "delete") and (current is None or current[0] < generation):
            # Once per change, with the id of the request that asked for it (the bus envelope's).
            log.info("instance %s: %s, generation %d", instance_id, op, generation)
        if op == "put":
            if self._deleted.get(instance_id, -1) >= generation:
                return
            spec = dict(msg.get("spec") or {})
            spec["id"] = instance_id
            self._specs[instance_id] = (generation, spec, time.monotonic())
            if msg.get("report"):
                self._published.pop(instance_id, None)  # the controller lacks our last word: say it again
            self._doomed.pop(instance_id, None)
            self._handover.pop(instance_id, None)
        elif op == "delete":
            self._specs.pop(instance_id, None)
            self._deleted[instance_id] = generation
            self._doomed[instance_id] = generation
            if msg.get("to_host"):
                self._handover[instance_id] = str(msg["to_host"])  # it moves there: hand over, keep the files
            else:
                self._handover.pop(instance_id, None)
        else:
            return
        self.reconciler.enqueue(instance_id)

    async def _on_sync(self, desired: set[str]) -> None:
        now = time.monotonic()
        for instance_id, (_, _, received) in list(self._specs.items()):
            if instance_id not in desired and now - received > SYNC_GRACE:
                self._specs.pop(instance_id)
                self._doomed[instance_id] = None
                self.reconciler.enqueue(instance_id)
        for instance_id in await self.driver.list_instances():
            if instance_id not in desired and instance_id not in self._specs:
                self._doomed.setdefault(instance_id, None)
                self.reconciler.enqueue(instance_id)

    # -- reconcile ----------------------------------------------------------------------------------

    async def _reconcile(self, instance_id: str) -> Result:
        entry = self._specs.get(instance_id)
        if entry is None:
            if instance_id in self._doomed:
                await self._destroy(instance_id)
            # Otherwise: a guest found on the host with no spec yet; the controller's answer to our resync
            # brings either its spec or a sync that names it garbage.
            return DONE
        generation, spec, _ = entry
        migration = spec.get("migration") or {}
        if (migration.get("kind") == "live" and migration.get("source_host") != migration.get("dest_host")
                and self.host in (migration.get("source_host"), migration.get("dest_host"))):
            moved = await self._live_migration(instance_id, generation, spec, migration)
            if moved is not None:
                return moved
        record = self.records.load(instance_id)
        if record is not None and record.failed_gen == generation:
            if instance_id not in self._published:  # asked again ("report"): the error report may have been lost
                await self._publish(instance_id, generation, "error", await self._power_state(instance_id), None,
                                    record.fault)
            return Result(terminal=True)
        try:
            if migration.get("dest_host") == self.host and migration.get("source_host") not in (None, "", self.host) \
                    and migration.get("kind") in ("cold", "evacuation"):
                if not await self._move_in(instance_id, generation, spec, migration):
                    return Result(requeue_after=0.5)
                record = self.records.load(instance_id)
            record = await self._converge(instance_id, generation, spec, record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            key = (instance_id, generation)
            self._attempts[key] = attempts = self._attempts.get(key, 0) + 1
            permanent = isinstance(exc, DriverError) and exc.permanent
            if not permanent and attempts < MAX_ATTEMPTS:
                raise  # the reconciler retries with backoff
            log.exception("instance %s: generation %d failed", instance_id, generation)
            self._attempts.pop(key, None)
            record = self.records.load(instance_id) or Record()
            record.failed_gen = generation
            # Nova keeps 255 characters of a fault message; the log has the rest.
            record.fault = {"message": (str(exc) or type(exc).__name__)[:255], "code": 500}
            self.records.save(instance_id, record)
            await self._publish(instance_id, generation, "error", await self._power_state(instance_id), None,
                                record.fault)
            return Result(terminal=True)
        self._attempts.pop((instance_id, generation), None)
        info = await self.driver.get_info(instance_id)
        vm_state = VM_FOR_POWER.get(info.power_state, "error")
        if vm_state == "active" and record.rescue:
            vm_state = "rescued"
        fault = {"message": info.fault or "the guest crashed", "code": 500} if info.power_state == CRASHED else None
        await self._publish(instance_id, generation, vm_state, info.power_state, None, fault, final=True)
        await self._publish_node()
        return DONE

    async def _destroy(self, instance_id: str) -> None:
        to_host = self._handover.get(instance_id)
        if to_host is not None:
            await self._move_out(instance_id, to_host)  # if it fails, the retry hands over again (never deletes)
            self._handover.pop(instance_id, None)
            return
        generation = self._doomed[instance_id]
        if generation is not None:
            await self._publish(instance_id, self._observed(instance_id), "active", NOSTATE, "deleting", None)
        await self.driver.destroy(instance_id)
        self.records.delete(instance_id)
        self._doomed.pop(instance_id, None)
        self._published.pop(instance_id, None)
        self._detach_refused.pop(instance_id, None)
        if generation is not None:
            await self._publish(instance_id, generation, "deleted", NOSTATE, None, None)
        await self._publish_node()

    async def _power_state(self, instance_id: str) -> int:
        try:
            return (await self.driver.get_info(instance_id)).power_state
        except Exception:
            return NOSTATE

    def _observed(self, instance_id: str) -> int:
        record = self.records.load(instance_id)
        return record.realized_gen if record is not None else 0


def build(config: Config, bus: Bus) -> ComputeAgent:
    """The agent ``tinystack up`` runs: settings from ``[compute]``, the configured driver."""
    settings = agent_settings.load(config)
    driver: ComputeDriver
    if settings.driver == "fake":
        # Nodes of one process share the instances path, so their fake drivers share one storage.
        driver = FakeDriver(host=settings.host, storage=shared_storage(str(settings.instances_path)))
    else:
        from tinystack.compute.drivers.qemu import QemuDriver

        driver = QemuDriver(settings.instances_path, settings.image_cache_dir, lazy_from_state_dir(settings.state_dir),
                            netns=settings.node_netns, kvm=settings.kvm, power_off_timeout=settings.power_off_timeout,
                            console_log_max_bytes=settings.console_log_max_bytes,
                            tap_wait_timeout=settings.tap_wait_timeout,
                            image_cache_max_age=settings.image_cache_max_age, host=settings.host,
                            volume_detach_timeout=settings.volume_detach_timeout, qemu=settings.qemu_binary,
                            kvm_probe_image=partial(guest_build.probe_files, guest_settings.load(config).cache_dir))
    agent = ComputeAgent(bus, settings.host, driver, settings.state_dir / "compute-agent" / settings.host,
                         power_off_timeout=settings.power_off_timeout,
                         heartbeat_interval=settings.heartbeat_interval, resync_interval=settings.resync_interval,
                         migration_address=settings.live_migration_inbound_addr,
                         migration_timeout=settings.live_migration_timeout,
                         volume_detach_attempts=settings.volume_detach_attempts,
                         instances_path=settings.instances_path)
    bridge = consolebridge.load(config)
    if bridge.listen:
        agent.console_bridge(bridge.listen, bridge.secret)
    return agent
