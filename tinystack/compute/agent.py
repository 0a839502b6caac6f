"""The compute node agent: reconciles the ``instance`` documents it receives on ``agent.compute.<host>``
with the guests its driver runs, and reports status, node capacity and heartbeats (docs/contracts.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tinystack.compute import agent_settings, agent_volumes
from tinystack.compute.drivers.base import (
    CRASHED,
    NOSTATE,
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    ComputeDriver,
    DriverError,
    Spec,
)
from tinystack.compute.drivers.fake import FakeDriver, shared_storage
from tinystack.config import Config
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
# A cold move's destination waits this long for the source node to hand the guest's files over.
HANDOVER_TIMEOUT = 120.0

_VM_FOR_POWER = {RUNNING: "active", PAUSED: "paused", SUSPENDED: "suspended", SHUTDOWN: "stopped",
                 NOSTATE: "stopped", CRASHED: "error"}


@dataclass
class Record:
    """What this agent last made true for one instance; kept on disk so a restarted agent neither redoes a
    reboot or snapshot nor restarts a guest that shut itself down."""

    image_id: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    flavor: dict[str, Any] = field(default_factory=dict)
    rescue: bool = False
    reboot_seq: int = 0
    snapshot_seq: int = 0
    rebuild_seq: int = 0
    power: str | None = None  # the desired power last realised
    realized_gen: int = 0
    guest_stopped_gen: int | None = None  # the guest powered itself off while this generation was realised
    host_stopped: bool = False  # stopped by the agent's cleanup (tinystack up exiting): start again
    failed_gen: int | None = None
    fault: dict[str, Any] | None = None
    volumes: list[str] = field(default_factory=list)  # the volumes the guest has (or boots with)


class Records:
    """One small JSON file per instance, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, instance_id: str) -> Path:
        return self.root / f"{instance_id}.json"

    def load(self, instance_id: str) -> Record | None:
        try:
            data = json.loads(self._path(instance_id).read_text())
        except (FileNotFoundError, ValueError):
            return None
        known = Record.__dataclass_fields__
        return Record(**{k: v for k, v in data.items() if k in known})

    def save(self, instance_id: str, record: Record) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._path(instance_id).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, self._path(instance_id))

    def delete(self, instance_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(instance_id).unlink()

    def all(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [p.stem for p in self.root.glob("*.json")]


def _rebuild_seq(spec: Spec) -> int:
    return int((spec.get("rebuild") or {}).get("seq") or 0)


def _fresh_record(spec: Spec) -> Record:
    """The record of a guest just built (or just moved in) for ``spec``: nothing of it realised yet."""
    image = spec.get("image") or {}
    return Record(image_id=image.get("id"), kernel_id=spec.get("kernel_image_id"),
                  ramdisk_id=spec.get("ramdisk_image_id"), flavor=_flavor_key(spec.get("flavor") or {}),
                  reboot_seq=int((spec.get("reboot") or {}).get("seq") or 0),
                  snapshot_seq=int((spec.get("snapshot") or {}).get("seq") or 0), rebuild_seq=_rebuild_seq(spec))


def _flavor_key(flavor: dict[str, Any]) -> dict[str, Any]:
    # Only what changes the guest's hardware; extra_specs are scheduling hints here.
    return {k: flavor.get(k, 0) or 0 for k in ("vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap_mb")}


class ComputeAgent:
    def __init__(self, bus: Bus, host: str, driver: ComputeDriver, records_dir: Path, *,
                 power_off_timeout: float = 10.0, heartbeat_interval: float = 10.0,
                 resync_interval: float = 30.0, migration_address: str = "", migration_timeout: float = 300.0,
                 volume_detach_attempts: int = 1) -> None:
        self.bus = bus
        self.host = host
        self.driver = driver
        self.records = Records(records_dir)
        self.power_off_timeout = power_off_timeout
        self.heartbeat_interval = heartbeat_interval
        self.migration_address = migration_address
        self.migration_timeout = migration_timeout
        self.volume_detach_attempts = volume_detach_attempts
        self._detach_refused: dict[str, dict[str, str]] = {}  # instance -> volume -> why the guest kept it
        self._handover: dict[str, str] = {}  # instance -> the host a delete hands it to (a cold move)
        self._waiting: dict[tuple[str, int], float] = {}  # cold move in: since when the files are awaited
        self._sent: set[str] = set()  # live migrations this node has tried to send (never twice)
        self._specs: dict[str, tuple[int, Spec, float]] = {}
        self._doomed: dict[str, int | None] = {}  # to destroy: delete generation, or None for an orphan
        self._deleted: dict[str, int] = {}
        self._attempts: dict[tuple[str, int], int] = {}
        self._published: dict[str, str] = {}
        self._closing = False
        self._node_doc: str | None = None
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
        await self._publish_node()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name=f"compute-heartbeat-{self.host}"))
        await self.bus.publish("resync.compute", {"host": self.host})

    async def stop(self, cleanup: bool) -> None:
        # From here on the agent reports nothing: guests it powers off now are not "stopped by the user"
        # (the desired state still says running, and the next start brings them back).
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.reconciler.stop()
        if cleanup:
            # Guests come back when the cloud starts again: their disks stay, the record says why they are off.
            for instance_id in await self.driver.list_instances():
                record = self.records.load(instance_id)
                if record is not None:
                    record.host_stopped = True
                    self.records.save(instance_id, record)
        await self.driver.close(stop_guests=cleanup)

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
        if op == "put":
            if self._deleted.get(instance_id, -1) >= generation:
                return
            spec = dict(msg.get("spec") or {})
            spec["id"] = instance_id
            self._specs[instance_id] = (generation, spec, time.monotonic())
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
            try:
                power_state = (await self.driver.get_info(instance_id)).power_state
            except Exception:
                power_state = NOSTATE
            await self._publish(instance_id, generation, "error", power_state, None, record.fault)
            return Result(terminal=True)
        self._attempts.pop((instance_id, generation), None)
        info = await self.driver.get_info(instance_id)
        vm_state = _VM_FOR_POWER.get(info.power_state, "error")
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

    # -- moving between nodes -------------------------------------------------------------------------

    async def _move_out(self, iid: str, to_host: str) -> None:
        """Cold move (or a reverted one) out: power the guest off gently and hand its files to ``to_host``. It
        is not deleted, so nothing is reported: the destination reports it from now on."""
        if (await self.driver.get_info(iid)).exists:
            await self.driver.power_off(iid, self.power_off_timeout)
            await self.driver.release(iid, to_host)
        self.records.delete(iid)
        self._doomed.pop(iid, None)
        self._published.pop(iid, None)
        self._detach_refused.pop(iid, None)
        await self._publish_node()

    async def _move_in(self, iid: str, gen: int, spec: Spec, migration: dict[str, Any]) -> bool:
        """Cold move or evacuation in: False while the source has not handed the files over; once they are here,
        a fresh record, so the guest starts as the document says (its last power state on the source is gone)."""
        if (await self.driver.get_info(iid)).exists:
            if self.records.load(iid) is None:  # handed over since we last looked
                self.records.save(iid, _fresh_record(spec))
            return True
        source = str(migration.get("source_host"))
        if not await self.driver.claim(iid, source, force=migration.get("kind") == "evacuation"):
            since = self._waiting.setdefault((iid, gen), time.monotonic())
            if time.monotonic() - since > HANDOVER_TIMEOUT:
                raise DriverError(f"host {source} did not hand instance {iid} over within {HANDOVER_TIMEOUT:.0f}s",
                                  permanent=True)
            return False
        self._waiting.pop((iid, gen), None)
        if (await self.driver.get_info(iid)).exists:
            self.records.save(iid, _fresh_record(spec))
        return True

    async def _live_migration(self, iid: str, gen: int, spec: Spec, migration: dict[str, Any]) -> Result | None:
        """This node's part of a live migration; None when the document is to be converged as usual (the source
        before the destination listens, or after a failed attempt)."""
        mid = str(migration.get("id"))
        dest = str(migration.get("dest_host"))
        if dest == self.host:
            if (await self.driver.get_info(iid)).exists:
                return None  # it has arrived
            try:
                if not self.migration_address:
                    raise DriverError("this node has no live_migration_inbound_addr to receive guests on", permanent=True)
                uri = await self.driver.prepare_incoming(spec, self.migration_address)
            except Exception as exc:
                log.exception("instance %s: preparing for live migration %s failed", iid, mid)
                await self._migration_report(iid, gen, mid, "error", message=str(exc) or type(exc).__name__)
                return Result(terminal=True)
            await self._migration_report(iid, gen, mid, "listening", uri=uri)
            return DONE
        target = str(migration.get("uri") or "")
        if not target or mid in self._sent or not (await self.driver.get_info(iid)).exists:
            return None
        self._sent.add(mid)
        try:
            await self.driver.migrate_out(iid, target, dest, self.migration_timeout)
        except Exception as exc:
            log.exception("instance %s: live migration %s to %s failed; it stays here", iid, mid, dest)
            await self._migration_report(iid, gen, mid, "error", message=str(exc) or type(exc).__name__)
            return DONE
        self._specs.pop(iid, None)
        self._deleted[iid] = gen
        self.records.delete(iid)
        self._published.pop(iid, None)
        await self._migration_report(iid, gen, mid, "completed")
        await self._publish_node()
        return DONE

    async def _migration_report(self, iid: str, gen: int, mid: str, state: str, **extra: str) -> None:
        """``status.migration`` (docs/contracts.md): listening (with the URI), completed, or error (with why)."""
        if self._closing:
            return
        report = {"id": mid, "state": state, **{k: v[:255] for k, v in extra.items()}}
        await self.bus.publish("status.compute", {"type": "instance", "id": iid, "host": self.host,
                                                  "observed_generation": gen, "status": {"migration": report}})

    def _observed(self, instance_id: str) -> int:
        record = self.records.load(instance_id)
        return record.realized_gen if record is not None else 0

    async def _converge(self, iid: str, gen: int, spec: Spec, record: Record | None) -> Record:
        d = self.driver
        image = spec.get("image") or {}
        info = await d.get_info(iid)
        if not info.exists:
            await self._publish(iid, 0 if record is None else record.realized_gen, "building", NOSTATE, "spawning", None)
            await d.create(spec)
            record = _fresh_record(spec)
            self.records.save(iid, record)
        elif record is None:
            # Disks without a record (a record lost, or a guest from an older agent): adopt as it is.
            record = Record(image_id=image.get("id"), kernel_id=spec.get("kernel_image_id"),
                            ramdisk_id=spec.get("ramdisk_image_id"), flavor=_flavor_key(spec.get("flavor") or {}),
                            reboot_seq=int((spec.get("reboot") or {}).get("seq") or 0),
                            snapshot_seq=int((spec.get("snapshot") or {}).get("seq") or 0),
                            rebuild_seq=_rebuild_seq(spec), power=spec.get("power"), realized_gen=gen)
            self.records.save(iid, record)
        record.failed_gen, record.fault = None, None

        async def step(task: str) -> None:
            now = await d.get_info(iid)
            await self._publish(iid, record.realized_gen, _VM_FOR_POWER.get(now.power_state, "error"),
                                now.power_state, task, None)

        # Rebuild (a new rebuild seq or image) and resize (new flavor) rewrite disks: the guest must be off.
        flavor = _flavor_key(spec.get("flavor") or {})
        images = (image.get("id"), spec.get("kernel_image_id"), spec.get("ramdisk_image_id"))
        rebuild = _rebuild_seq(spec) > record.rebuild_seq or images[0] != record.image_id
        if rebuild or images != (record.image_id, record.kernel_id, record.ramdisk_id) or flavor != record.flavor:
            await step("rebuilding" if rebuild else "resize_migrating")
            await d.power_off(iid, self.power_off_timeout)
            await d.rebuild_disks(spec, recreate_root=rebuild)
            record.image_id, record.kernel_id, record.ramdisk_id = images
            record.flavor, record.rebuild_seq = flavor, max(record.rebuild_seq, _rebuild_seq(spec))
            self.records.save(iid, record)

        rescue = bool(spec.get("rescue"))
        if rescue != record.rescue:
            await step("rescuing" if rescue else "unrescuing")
            await d.power_off(iid, self.power_off_timeout)
            if not rescue:
                await d.unrescue(iid)
            record.rescue = rescue
            self.records.save(iid, record)

        snapshot = spec.get("snapshot") or {}
        if snapshot.get("image_id") and int(snapshot.get("seq") or 0) > record.snapshot_seq:
            await step("image_uploading")
            await d.snapshot(iid, snapshot["image_id"])
            record.snapshot_seq = int(snapshot["seq"])
            self.records.save(iid, record)

        reboot = spec.get("reboot") or {}
        if int(reboot.get("seq") or 0) > record.reboot_seq:
            hard = bool(reboot.get("hard"))
            if (await d.get_info(iid)).power_state in (RUNNING, PAUSED):
                await step("rebooting_hard" if hard else "rebooting")
                await d.reboot(spec, hard)
            record.reboot_seq = int(reboot["seq"])
            self.records.save(iid, record)

        await self._converge_power(iid, gen, spec, record, step)
        record.volumes, refused = await agent_volumes.converge(d, iid, spec, self.volume_detach_attempts)
        self._detach_refused[iid] = refused
        record.power, record.realized_gen, record.host_stopped = spec.get("power"), gen, False
        self.records.save(iid, record)
        return record

    async def _converge_power(self, iid: str, gen: int, spec: Spec, record: Record, step: Any) -> None:
        d = self.driver
        desired = spec.get("power") or "running"
        state = (await d.get_info(iid)).power_state
        off = state in (SHUTDOWN, NOSTATE, CRASHED)
        if (off and record.power in ("running", "paused") and record.realized_gen == gen
                and not record.host_stopped):
            # The guest shut itself down: like Nova, it stays off until the next request says otherwise.
            record.guest_stopped_gen = gen
        if desired == "running":
            if state == SUSPENDED:
                await step("resuming")
                await d.power_on(spec)
            elif state == PAUSED:
                await step("unpausing")
                await d.unpause(iid)
            elif state != RUNNING and record.guest_stopped_gen != gen:
                await step("powering-on")
                await d.power_on(spec)
        elif desired == "stopped":
            if not off or state == CRASHED:
                await step("powering-off")
                await d.power_off(iid, self.power_off_timeout)
        elif desired == "paused":
            if state not in (RUNNING, PAUSED):
                await step("powering-on")
                await d.power_on(spec)
            if (await d.get_info(iid)).power_state == RUNNING:
                await step("pausing")
                await d.pause(iid)
        elif desired == "suspended":
            if state == SHUTDOWN:
                await step("powering-on")
                await d.power_on(spec)
            if (await d.get_info(iid)).power_state in (RUNNING, PAUSED):
                await step("suspending")
                await d.suspend(iid)
        else:
            raise DriverError(f"unknown power {desired!r}", permanent=True)

    # -- publishing ---------------------------------------------------------------------------------

    async def _publish(self, iid: str, observed: int, vm_state: str, power_state: int, task_state: str | None,
                       fault: dict[str, Any] | None, final: bool = False) -> None:
        status: dict[str, Any] = {"vm_state": vm_state, "power_state": power_state, "task_state": task_state,
                                  "fault": fault, "host": self.host,
                                  "console_log": self.driver.console_log_path(iid)}
        if self._closing:
            return
        entry = self._specs.get(iid)
        # Unknown when the hypervisor does not answer: then the conductor decides nothing about volumes.
        with contextlib.suppress(DriverError):
            status["volumes"] = await agent_volumes.guest_volumes(self.driver, iid, entry[1] if entry else None)
        if self._detach_refused.get(iid):
            status["detach_failed"] = self._detach_refused[iid]
        key = json.dumps([observed, status], sort_keys=True)
        if self._published.get(iid) == key:
            return  # nothing new to say (the timer re-reconciles every guest)
        self._published[iid] = key
        status["diagnostics"] = await self.driver.diagnostics(iid) if final else {}
        await self.bus.publish("status.compute", {"type": "instance", "id": iid, "host": self.host,
                                                  "observed_generation": observed, "status": status})

    async def _publish_node(self) -> None:
        info = await self.driver.host_info()
        status = {"vcpus": info.vcpus, "memory_mb": info.memory_mb, "local_gb": info.local_gb,
                  "hypervisor_type": info.hypervisor_type, "hypervisor_version": info.hypervisor_version,
                  "cpu_info": info.cpu_info, "running_vms": len(await self.driver.list_instances()),
                  # Where other nodes reach this one (its underlay address with several nodes), as Nova's host_ip.
                  "host_ip": self.migration_address or "127.0.0.1"}
        key = json.dumps(status, sort_keys=True)
        if key == self._node_doc:
            return
        self._node_doc = key
        await self.bus.publish("status.compute", {"type": "node", "id": self.host, "host": self.host,
                                                  "status": status})


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
    return ComputeAgent(bus, settings.host, driver, settings.state_dir / "compute-agent" / settings.host,
                        power_off_timeout=settings.power_off_timeout,
                        heartbeat_interval=settings.heartbeat_interval, resync_interval=settings.resync_interval,
                        migration_address=settings.live_migration_inbound_addr,
                        migration_timeout=settings.live_migration_timeout,
                        volume_detach_attempts=settings.volume_detach_attempts)

