"""The backup agent of the volume host: reconciles the ``backup`` documents it receives on ``agent.backup.<host>``
with object storage (through the chunked driver) and the volume files, and reports on ``status.backup``
(docs/contracts.md).

A backup is done when its metadata object exists, so a crash mid-way is repaired by doing it again (the chunks
have fixed names and are overwritten). A restore is done when the agent's record says so: the record is written
after the file is synced, so an interrupted restore is written again from the start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from tinystack.config import Config
from tinystack.core.bus import Bus, SentReports, publish_changed
from tinystack.core.reconcile import DONE, Reconciler, Result
from tinystack.core.svcauth import lazy_from_state_dir
from tinystack.volume import agent_settings
from tinystack.volume.agent_records import Records, reason_of
from tinystack.volume.drivers.backup_chunked import ChunkedBackupDriver
from tinystack.volume.drivers.base import DriverError
from tinystack.volume.drivers.swift import SwiftClient

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
SYNC_GRACE = 10.0


class BackupAgent:
    def __init__(self, bus: Bus, host: str, driver: ChunkedBackupDriver | None, volumes_path: Path,
                 records_dir: Path, *, resync_interval: float = 30.0, volume_timeout: float = 120.0,
                 poll_interval: float = 0.5, backends: dict[str, Path] | None = None) -> None:
        """``driver`` None: the volume driver keeps no data (``fake``), and every backup fails saying so.
        ``backends``: each backend's directory (``[volume] enabled_backends``); ``volumes_path`` is the first."""
        self.bus = bus
        self.host = host
        self.driver = driver
        self.volumes_path = volumes_path
        self.backends = backends or {}
        self.records = Records(records_dir)
        self.volume_timeout = volume_timeout
        self.poll_interval = poll_interval
        self._docs: dict[str, tuple[int, dict[str, Any], float]] = {}  # id -> (generation, message, received)
        self._attempts: dict[tuple[str, int], int] = {}
        self._waiting: dict[tuple[str, int], float] = {}
        self._published = SentReports()
        self._done: dict[str, int] = {}  # id -> the generation found complete (the timer need not look again)
        self._closing = False
        self.reconciler = Reconciler(f"backup-{host}", self._reconcile, self._keys, resync_interval=resync_interval,
                                     workers=2)

    @property
    def topic(self) -> str:
        return f"agent.backup.{self.host}"

    async def start(self) -> None:
        self.bus.subscribe(self.topic, self._on_message)
        await self.reconciler.start()
        await self.bus.publish("resync.backup", {"host": self.host})

    async def stop(self, cleanup: bool) -> None:
        """Stop; backups are data in object storage and stay whatever ``cleanup`` says."""
        self._closing = True
        # A backup or restore in flight may take minutes: cut it short; the next start does it again.
        await self.reconciler.stop(grace=1.0)
        if self.driver is not None:
            await self.driver.swift.close()

    async def wait_idle(self) -> None:
        await self.reconciler.wait_idle()

    async def _keys(self) -> list[str]:
        self._published.refresh_due()
        return sorted(self._docs)

    async def _on_message(self, msg: dict[str, Any]) -> None:
        if msg.get("op") == "sync":
            wanted = {str(i) for i in msg.get("ids") or []}
            now = time.monotonic()
            for rid, (_, doc, received) in list(self._docs.items()):
                if rid not in wanted and now - received > SYNC_GRACE and doc.get("op") != "delete":
                    self._docs.pop(rid)  # its row is gone: nothing on this host to undo
            return
        bid, generation = msg.get("id"), int(msg.get("generation") or 0)
        if msg.get("type") != "backup" or not isinstance(bid, str) or msg.get("op") not in ("put", "delete"):
            return
        rid = bid
        current = self._docs.get(rid)
        if current is not None and (current[0] > generation or (current[0] == generation and current[1] == msg)):
            return  # late or repeated
        self._docs[rid] = (generation, dict(msg), time.monotonic())
        # A new document (an import reuses an id at generation 1): look again, and report even an unchanged status.
        self._done.pop(rid, None)
        self._published.pop(rid, None)
        self.reconciler.enqueue(rid)

    # -- reconcile ----------------------------------------------------------------------------------------

    async def _reconcile(self, rid: str) -> Result:
        entry = self._docs.get(rid)
        if entry is None:
            return DONE
        generation, msg, _ = entry
        if self._done.get(rid) == generation:
            return DONE
        spec = dict(msg.get("spec") or {})
        try:
            if self.driver is None:
                raise DriverError("the volume driver 'fake' keeps no data to back up", permanent=True)
            if msg["op"] == "delete":
                count = await self.driver.delete(str(spec["container"]), str(spec["prefix"]))
                log.info("backup %s: %d objects removed", rid, count)
                self._docs.pop(rid, None)
                self.records.delete(f"backup:{rid}")
                await self._publish(rid, generation, {"state": "deleted"})
                return DONE
            status = await self._converge(rid, generation, spec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._again(rid, generation, exc):
                raise  # the reconciler retries with backoff
            log.exception("backup %s: generation %d failed", rid, generation)
            self._waiting.pop((rid, generation), None)
            await self._publish(rid, generation, {"state": "error", "reason": reason_of(exc)})
            return Result(terminal=True)
        if isinstance(status, Result):
            return status
        self._attempts.pop((rid, generation), None)
        self._waiting.pop((rid, generation), None)
        await self._publish(rid, generation, status)
        self._done[rid] = generation
        return DONE

    def _again(self, rid: str, generation: int, exc: BaseException) -> bool:
        attempt = self._attempts[(rid, generation)] = self._attempts.get((rid, generation), 0) + 1
        if (isinstance(exc, DriverError) and exc.permanent) or attempt >= MAX_ATTEMPTS:
            self._attempts.pop((rid, generation), None)
            return False
        return True

    async def _converge(self, rid: str, generation: int, spec: dict[str, Any]) -> dict[str, Any] | Result:
        assert self.driver is not None
        container, prefix = str(spec["container"]), str(spec["prefix"])
        meta = await self.driver.find(container, prefix)
        if meta is None:
            if spec.get("mode") == "import":
                raise DriverError(f"no backup at {container}/{prefix} in object storage", permanent=True)
            meta = await self._backup(rid, spec, container, prefix)
        elif meta.get("backup_id") not in (None, rid) and spec.get("mode") != "import":
            raise DriverError(f"{container}/{prefix} holds backup {meta.get('backup_id')}", permanent=True)
        key = f"backup:{rid}"
        record = self.records.load(key)
        restore = spec.get("restore") or {}
        seq = int(restore.get("seq") or 0)
        if seq > record.restore_seq:
            target = self.file("volume", restore["volume_id"], restore.get("backend"), restore.get("name_id"))
            if not target.exists():
                return self._wait_for_volume(rid, generation, str(restore["volume_id"]))
            await self.driver.restore(container, prefix, target)
            record.restore_seq = seq
            self.records.save(key, record)
            log.info("backup %s restored into volume %s", rid, restore["volume_id"])
        own = sum(1 for e in meta.get("objects", []) if str(e.get("name", "")).startswith(prefix))
        return {"state": "ready", "object_count": own + 1, "restore_seq": record.restore_seq}

    async def _backup(self, rid: str, spec: dict[str, Any], container: str, prefix: str) -> dict[str, Any]:
        assert self.driver is not None
        backend = spec.get("volume_backend")
        source = (self.file("snapshot", spec["snapshot_id"], backend) if spec.get("snapshot_id")
                  else self.file("volume", spec["volume_id"], backend, spec.get("volume_name_id")))
        if not source.exists():
            raise DriverError(f"{source.name} is not on this volume host", permanent=True)
        parent_meta = None
        parent = spec.get("parent")
        if parent:
            parent_meta = await self.driver.find(str(parent["container"]), str(parent["prefix"]))
            if parent_meta is None:
                raise DriverError(f"parent backup {parent['id']} is not in object storage", permanent=True)
        started = time.monotonic()
        meta = await self.driver.backup(source, container, prefix,
                                        {"backup_id": rid, "volume_id": spec.get("volume_id"),
                                         "parent_id": parent["id"] if parent else None}, parent_meta)
        log.info("backup %s of %s: %d chunks in %.1fs", rid, source.name, len(meta["objects"]),
                 time.monotonic() - started)
        return meta

    def file(self, kind: str, ident: str, backend: str | None, name_id: str | None = None) -> Path:
        """A volume's or snapshot's file: in its backend's directory, a migrated volume's named after its
        ``name_id`` (as the volume agent keeps them)."""
        root = self.backends.get(backend, self.volumes_path) if backend else self.volumes_path
        return root / f"{kind}-{name_id or ident}"

    def _wait_for_volume(self, rid: str, generation: int, volume_id: str) -> Result:
        since = self._waiting.setdefault((rid, generation), time.monotonic())
        if time.monotonic() - since > self.volume_timeout:
            raise DriverError(f"volume {volume_id} not found after waiting {self.volume_timeout:g}s", permanent=True)
        return Result(requeue_after=self.poll_interval)

    async def _publish(self, rid: str, generation: int, status: dict[str, Any]) -> None:
        if self._closing:
            return
        await publish_changed(self.bus, self._published, rid, json.dumps([generation, status], sort_keys=True),
                              "status.backup", {"type": "backup", "id": rid, "host": self.host,
                                                "observed_generation": generation, "status": status})


def build(config: Config, bus: Bus) -> BackupAgent:
    """The agent ``tinystack up`` runs beside the volume agent, on the same volume files."""
    settings = agent_settings.load(config)
    driver = None
    if settings.driver != "fake":
        swift = SwiftClient(lazy_from_state_dir(settings.state_dir), timeout=settings.image_timeout)
        driver = ChunkedBackupDriver(swift, chunk_size=settings.backup_chunk_size)
    return BackupAgent(bus, settings.host, driver, settings.volumes_path,
                       settings.state_dir / "backup-agent" / settings.host, resync_interval=settings.resync_interval,
                       volume_timeout=settings.source_timeout, backends=settings.backends)
