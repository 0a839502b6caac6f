"""The volume node agent: reconciles the ``volume`` and ``snapshot`` documents it receives on ``agent.volume.<host>``
with the files its driver keeps, and reports status, capacity and heartbeats (docs/contracts.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinystack.config import Config
from tinystack.core.bus import Bus
from tinystack.core.reconcile import DONE, Reconciler, Result
from tinystack.core.svcauth import lazy_from_state_dir
from tinystack.volume import agent_settings
from tinystack.volume.drivers.base import DriverError, GiB, VolumeDriver, size_gb
from tinystack.volume.drivers.fake import FakeVolumeDriver

log = logging.getLogger(__name__)

BINARY = "tinystack-volume-agent"
TYPES = ("volume", "snapshot")
# Transient failures (the image API down, a copy interrupted) are retried this many times per generation before
# the resource goes to error; permanent ones (an image too large for the volume) go at once.
MAX_ATTEMPTS = 3
# A document received this recently survives a ``sync`` that does not name it: the sync may have been computed
# before the ``put`` that created it. Volumes are data, so be generous.
SYNC_GRACE = 10.0
# Cinder keeps 255 characters of a reason; the log has the rest.
REASON_MAX = 255

Spec = dict[str, Any]


@dataclass
class Record:
    """What this agent did for one volume or snapshot that the files cannot tell: kept on disk so a restarted
    agent neither uploads again nor forgets that a generation failed."""

    upload_seq: int = 0  # the newest upload done
    upload_error: dict[str, Any] | None = None  # {"seq", "reason"}: the newest upload that failed for good
    failed_gen: int | None = None
    reason: str | None = None


class Records:
    """One small JSON file per resource key, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / f"{key.replace(':', '-', 1)}.json"

    def load(self, key: str) -> Record:
        try:
            data = json.loads(self._path(key).read_text())
        except (FileNotFoundError, ValueError):
            return Record()
        known = Record.__dataclass_fields__
        return Record(**{k: v for k, v in data.items() if k in known})

    def save(self, key: str, record: Record) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


class _Again(Exception):
    """A transient failure already counted against its generation: the reconciler tries again."""


def _split(key: str) -> tuple[str, str]:
    kind, _, rid = key.partition(":")
    return kind, rid


def _reason(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:REASON_MAX]


class VolumeAgent:
    def __init__(self, bus: Bus, host: str, driver: VolumeDriver, records_dir: Path, *,
                 heartbeat_interval: float = 10.0, resync_interval: float = 30.0, source_timeout: float = 120.0,
                 poll_interval: float = 0.5) -> None:
        self.bus = bus
        self.host = host
        self.driver = driver
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
        self._published: dict[str, str] = {}
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciler = Reconciler(f"volume-{host}", self._reconcile, self._list_keys,
                                     resync_interval=resync_interval)

    @property
    def topic(self) -> str:
        return f"agent.volume.{self.host}"

    # -- life cycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.driver.init_host()
        self.bus.subscribe(self.topic, self._on_message)
        await self.reconciler.start()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name=f"volume-heartbeat-{self.host}"))
        await self.bus.publish("resync.volume", {"host": self.host})

    async def stop(self, cleanup: bool) -> None:
        """Stop the tasks. Volumes are persistent data: even with ``cleanup`` no file is removed."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.reconciler.stop()

    async def wait_idle(self) -> None:
        await self.reconciler.wait_idle()

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                cap = await self.driver.capacity()
                await self.bus.publish("heartbeat", {"agent": "volume", "host": self.host, "time": time.time(),
                                                     "binary": BINARY, "capacity_gb": cap.capacity_gb,
                                                     "free_gb": cap.free_gb})
            except Exception:
                log.exception("volume heartbeat failed")
            await asyncio.sleep(self.heartbeat_interval)

    async def _on_host(self) -> set[str]:
        return ({f"volume:{i}" for i in await self.driver.list_volumes()}
                | {f"snapshot:{i}" for i in await self.driver.list_snapshots()})

    async def _list_keys(self) -> list[str]:
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
            self._specs.pop(key, None)
            self._deleted[key] = generation
            self._doomed[key] = generation
        else:
            return
        self.reconciler.enqueue(key)

    async def _on_sync(self, desired: set[str], types: set[str]) -> None:
        now = time.monotonic()
        for key, (_, _, received) in list(self._specs.items()):
            if _split(key)[0] in types and key not in desired and now - received > SYNC_GRACE:
                self._specs.pop(key)
                self._doomed[key] = None
                self.reconciler.enqueue(key)
        for key in await self._on_host():
            if _split(key)[0] in types and key not in desired and key not in self._specs:
                self._doomed.setdefault(key, None)
                self.reconciler.enqueue(key)

    # -- reconcile ----------------------------------------------------------------------------------------

    def _again(self, key: str, generation: int | None, exc: BaseException) -> bool:
        """Count a failure of ``generation``; True when it is worth another try."""
        attempt = self._attempts[(key, generation)] = self._attempts.get((key, generation), 0) + 1
        permanent = isinstance(exc, DriverError) and exc.permanent
        if permanent or attempt >= MAX_ATTEMPTS:
            self._attempts.pop((key, generation), None)
            return False
        return True

    async def _reconcile(self, key: str) -> Result:
        entry = self._specs.get(key)
        if entry is None:
            if key in self._doomed:
                return await self._remove(key)
            # Found on the host with no document yet: the controller's answer to our resync brings either its
            # document or a sync that names it garbage.
            return DONE
        generation, spec, _ = entry
        record = self.records.load(key)
        if record.failed_gen == generation:
            await self._publish_error(key, generation, record.reason or "failed")
            return Result(terminal=True)
        try:
            if _split(key)[0] == "volume":
                waiting = await self._converge_volume(key, generation, spec, record)
            else:
                waiting = await self._converge_snapshot(key, generation, spec)
        except asyncio.CancelledError:
            raise
        except _Again:
            raise
        except Exception as exc:
            if self._again(key, generation, exc):
                raise  # the reconciler retries with backoff
            log.exception("%s: generation %d failed", key, generation)
            self._waiting.pop((key, generation), None)
            record = self.records.load(key)
            record.failed_gen, record.reason = generation, _reason(exc)
            self.records.save(key, record)
            await self._publish_error(key, generation, record.reason)
            return Result(terminal=True)
        if waiting is not None:
            return waiting
        self._attempts.pop((key, generation), None)
        self._waiting.pop((key, generation), None)
        await self._publish_ready(key, generation)
        for waiter in self._waiters.pop(key, set()):
            self.reconciler.enqueue(waiter)
        return DONE

    def _wait_for(self, key: str, generation: int, source: str) -> Result:
        """Look again soon for ``source`` (``volume:<id>`` or ``snapshot:<id>``); after ``source_timeout`` give up."""
        since = self._waiting.setdefault((key, generation), time.monotonic())
        if time.monotonic() - since > self.source_timeout:
            self._waiters.get(source, set()).discard(key)
            kind, rid = _split(source)
            raise DriverError(f"{kind} {rid} not found after waiting {self.source_timeout:g}s", permanent=True)
        self._waiters.setdefault(source, set()).add(key)
        return Result(requeue_after=self.poll_interval)

    async def _exists(self, source: str) -> bool:
        kind, rid = _split(source)
        size = await (self.driver.volume_size(rid) if kind == "volume" else self.driver.snapshot_size(rid))
        return size is not None

    async def _converge_volume(self, key: str, generation: int, spec: Spec, record: Record) -> Result | None:
        d, rid = self.driver, spec["id"]
        try:
            wanted = int(spec["size_gb"])
        except (KeyError, TypeError, ValueError):
            raise DriverError(f"volume document without a usable size_gb: {spec.get('size_gb')!r}",
                              permanent=True) from None
        if wanted < 1:
            raise DriverError(f"volume size must be at least 1 GB, not {wanted}", permanent=True)
        size = await d.volume_size(rid)
        if size is None:
            source = dict(spec.get("source") or {"type": "blank"})
            if source.get("type") in ("volume", "snapshot"):
                needed = f"{source['type']}:{source.get('id')}"
                if not await self._exists(needed):
                    return self._wait_for(key, generation, needed)
            await d.create_volume(rid, wanted, source)
        elif size < wanted * GiB:
            await d.extend_volume(rid, wanted)
        upload = spec.get("upload") or {}
        seq = int(upload.get("seq") or 0)
        failed_seq = int((record.upload_error or {}).get("seq") or 0)
        if upload.get("image_id") and seq > record.upload_seq and seq != failed_seq:
            try:
                await d.upload_volume(rid, str(upload["image_id"]), str(upload.get("disk_format") or "raw"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._again(key, generation, exc):
                    raise _Again(f"upload of volume {rid}: {exc}") from exc
                # Reported as an error of this generation (the controller puts an uploading volume back to
                # what it was, as Cinder does); the record keeps later generations from trying this seq again.
                record.upload_error = {"seq": seq, "reason": _reason(exc)}
                self.records.save(key, record)
                raise DriverError(record.upload_error["reason"], permanent=True) from exc
            else:
                record.upload_seq, record.upload_error = seq, None
        record.failed_gen, record.reason = None, None
        self.records.save(key, record)
        return None

    async def _converge_snapshot(self, key: str, generation: int, spec: Spec) -> Result | None:
        d, rid = self.driver, spec["id"]
        if await d.snapshot_size(rid) is None:
            volume_id = spec.get("volume_id")
            if not isinstance(volume_id, str) or not volume_id:
                raise DriverError("snapshot document without a volume_id", permanent=True)
            if await d.volume_size(volume_id) is None:
                return self._wait_for(key, generation, f"volume:{volume_id}")
            await d.create_snapshot(rid, volume_id)
        record = self.records.load(key)
        if record.failed_gen is not None:
            self.records.save(key, Record())
        return None

    async def _remove(self, key: str) -> Result:
        generation = self._doomed[key]
        kind, rid = _split(key)
        try:
            if kind == "volume":
                await self.driver.delete_volume(rid)
            else:
                await self.driver.delete_snapshot(rid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._again(key, generation, exc):
                raise
            log.exception("%s: removing failed; trying again on the next resync", key)
            if generation is not None:
                await self._publish_error(key, generation, _reason(exc))
            return Result(terminal=True)
        self._attempts.pop((key, generation), None)
        self.records.delete(key)
        self._doomed.pop(key, None)
        self._published.pop(key, None)
        for waiters in self._waiters.values():
            waiters.discard(key)
        for waited in [w for w in self._waiting if w[0] == key]:
            self._waiting.pop(waited, None)
        if generation is not None:
            await self._publish(key, generation, {"state": "deleted"})
        else:
            log.info("%s removed: no document names it", key)
        return DONE

    # -- publishing ---------------------------------------------------------------------------------------

    async def _publish_ready(self, key: str, generation: int) -> None:
        kind, rid = _split(key)
        if kind == "volume":
            size = await self.driver.volume_size(rid) or 0
            status: dict[str, Any] = {"state": "ready", "size_gb": size_gb(size),
                                      **self._upload_status(self.records.load(key))}
        else:
            status = {"state": "ready", "size_gb": size_gb(await self.driver.snapshot_size(rid) or 0)}
        await self._publish(key, generation, status)

    async def _publish_error(self, key: str, generation: int, reason: str) -> None:
        kind, rid = _split(key)
        status: dict[str, Any] = {"state": "error", "reason": reason}
        try:
            size = await (self.driver.volume_size(rid) if kind == "volume" else self.driver.snapshot_size(rid))
        except Exception:
            size = None
        if size is not None:
            status["size_gb"] = size_gb(size)
            if kind == "volume":
                status.update(self._upload_status(self.records.load(key)))
        await self._publish(key, generation, status)

    @staticmethod
    def _upload_status(record: Record) -> dict[str, Any]:
        status: dict[str, Any] = {"upload_seq": record.upload_seq}
        if record.upload_error and int(record.upload_error.get("seq") or 0) > record.upload_seq:
            status["upload_error"] = dict(record.upload_error)
        return status

    async def _publish(self, key: str, generation: int, status: dict[str, Any]) -> None:
        if self._closing:
            return
        seen = json.dumps([generation, status], sort_keys=True)
        if self._published.get(key) == seen:
            return  # nothing new to say (the timer re-reconciles everything)
        self._published[key] = seen
        kind, rid = _split(key)
        await self.bus.publish("status.volume", {"type": kind, "id": rid, "host": self.host,
                                                 "observed_generation": generation, "status": status})


def build(config: Config, bus: Bus) -> VolumeAgent:
    """The agent ``tinystack up`` runs: settings from ``[volume]``, the configured driver."""
    settings = agent_settings.load(config)
    driver: VolumeDriver
    if settings.driver == "fake":
        driver = FakeVolumeDriver(path=str(settings.volumes_path))
    else:
        from tinystack.volume.drivers.file import FileDriver

        driver = FileDriver(settings.volumes_path, lazy_from_state_dir(settings.state_dir), settings.host,
                            image_timeout=settings.image_timeout)
    return VolumeAgent(bus, settings.host, driver, settings.state_dir / "volume-agent" / settings.host,
                       heartbeat_interval=settings.heartbeat_interval, resync_interval=settings.resync_interval,
                       source_timeout=settings.source_timeout)

