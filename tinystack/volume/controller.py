"""The API side of the volume agent's contract (docs/contracts.md): sends the desired state of volumes and
snapshots to their host, and maps the agent's reports onto Cinder's statuses."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tinystack.core import desired
from tinystack.core.db import greatest
from tinystack.volume.models import Snapshot, Volume, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

log = logging.getLogger(__name__)

# The statuses an agent report ends, and what an error in each becomes.
_ERROR_FOR = {"creating": "error", "extending": "error_extending", "deleting": "error_deleting"}


class Controller:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc
        self.heartbeats: dict[str, dict[str, Any]] = {}  # host -> the agent's last heartbeat
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        # Level-triggered (tinystack/core/desired.py): volumes and snapshots whose generation is ahead of what went
        # out, and every volume host's full set each interval; ``publish_soon`` only hurries a key along.
        self.publisher = desired.Publisher("volume", self._publish_key, self._pending, self._sync_hosts,
                                           interval=svc.config.sync_interval)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.svc.bus.subscribe("status.volume", self.on_status, group="volume")
        self.svc.bus.subscribe("resync.volume", self.on_resync, group="volume")
        self.svc.bus.subscribe("heartbeat", self.on_heartbeat)  # fan-out: kept in memory here
        await self.publisher.start()

    async def stop(self) -> None:
        await self.publisher.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def host_up(self, host: str | None) -> bool:
        beat = self.heartbeats.get(host or "")
        return beat is not None and time.time() - float(beat.get("time") or 0) < self.svc.settings.service_down_time

    # --- desired state ----------------------------------------------------------------------------

    def publish_soon(self, kind: str, rid: str) -> None:
        """The row is committed: publish it now (a hint; the publisher's work list has it anyway). Callable from
        any thread: the rules run in worker threads (``ServiceBase.call``)."""
        self.publisher.enqueue_threadsafe(f"{kind}:{rid}")

    def message(self, s: Session, row: Volume | Snapshot) -> dict[str, Any]:
        kind = "volume" if isinstance(row, Volume) else "snapshot"
        if row.status == "deleting":
            msg = {"op": "delete", "type": kind, "id": row.id, "generation": row.generation}
            if isinstance(row, Volume):
                # Every name its files may have: migrated, mid-migration, or retired and not yet removed.
                doc = row.doc or {}
                names = {row.name_id, (doc.get("migration") or {}).get("name_id"),
                         *(r.get("name") for r in doc.get("retired") or [] if isinstance(r, dict))}
                msg["names"] = sorted(str(n) for n in names if n and n != row.id)
            return msg
        if isinstance(row, Volume):
            spec = {"id": row.id, "size_gb": row.size, "source": row.doc.get("source") or {"type": "blank"},
                    "upload": row.doc.get("upload"), "backend": row.backend or self.svc.settings.backend_name,
                    "name_id": row.name_id, "migration": row.doc.get("migration"),
                    "retired": row.doc.get("retired") or []}
            exports = self.svc.exports.of_volume(s, row.id)
            if exports:  # absent when none, so documents of clouds without NBD stay as they were
                spec["exports"] = exports
        else:
            # A snapshot lives beside its volume's file (volumes with snapshots never migrate).
            vol = s.get(Volume, row.volume_id)
            spec = {"id": row.id, "volume_id": row.volume_id,
                    "backend": (vol.backend if vol is not None else None) or self.svc.settings.backend_name,
                    "volume_name": (vol.name_id if vol is not None else None) or row.volume_id}
        return {"op": "put", "type": kind, "id": row.id, "generation": row.generation, "spec": spec}

    async def publish(self, kind: str, rid: str) -> None:
        await self.publisher.publish_now(f"{kind}:{rid}")

    async def _publish_key(self, key: str) -> None:
        kind, _, rid = key.partition(":")
        model: type[Volume | Snapshot] = Volume if kind == "volume" else Snapshot

        def load(s: Session) -> tuple[str, dict[str, Any], int] | None:
            row: Volume | Snapshot | None = s.get(Volume, rid) if kind == "volume" else s.get(Snapshot, rid)
            return None if row is None or not row.host else (row.host, self.message(s, row), row.generation)

        found = await self.svc.read(load)
        if found is None:
            return
        host, msg, generation = found
        await self.svc.bus.publish(f"agent.volume.{host}", msg)
        await self.svc.write(lambda s: desired.mark_published(s, model, rid, generation))

    async def _pending(self) -> list[str]:
        return await self.svc.read(lambda s: [
            f"{kind}:{rid}" for kind, model in (("volume", Volume), ("snapshot", Snapshot))
            for rid in s.scalars(select(model.id).where(model.host.is_not(None), desired.ahead(model)))])

    async def _sync_hosts(self) -> None:
        """The periodic full sync: every volume host (holding volumes, or heard from) gets all it should hold and
        the list of it."""
        hosts = await self.svc.read(lambda s: {
            h for model in (Volume, Snapshot)
            for h in s.scalars(select(model.host).where(model.host.is_not(None)).distinct()) if h})
        for host in sorted(hosts | set(self.heartbeats)):
            await self.on_resync({"host": host})

    # --- agent reports ----------------------------------------------------------------------------

    async def on_heartbeat(self, msg: dict[str, Any]) -> None:
        if msg.get("agent") == "volume" and msg.get("host"):
            self.heartbeats[str(msg["host"])] = dict(msg)

    async def on_resync(self, msg: dict[str, Any]) -> None:
        """An agent (re)started: everything it should hold, then the complete list (the rest is garbage)."""
        host = msg.get("host")
        if not isinstance(host, str):
            return
        def load(s: Session) -> list[dict[str, Any]]:
            rows: list[Volume | Snapshot] = [*s.scalars(select(Volume).where(Volume.host == host)),
                                             *s.scalars(select(Snapshot).where(Snapshot.host == host))]
            return [self.message(s, r) for r in rows]

        messages = await self.svc.read(load)
        ids: dict[str, list[str]] = {"volume": [], "snapshot": []}
        for m in messages:
            await self.svc.bus.publish(f"agent.volume.{host}", m)
            if m["op"] == "put":
                ids[m["type"]].append(m["id"])
        await self.svc.bus.publish(f"agent.volume.{host}", {"op": "sync", "types": ["volume", "snapshot"], "ids": ids})

    async def on_status(self, msg: dict[str, Any]) -> None:
        kind, rid = msg.get("type"), msg.get("id")
        st = msg.get("status") or {}
        observed = int(msg.get("observed_generation") or 0)
        if kind not in ("volume", "snapshot") or not isinstance(rid, str):
            return
        model: type[Volume | Snapshot] = Volume if kind == "volume" else Snapshot
        switched: list[str] = []  # a volume whose migration ended: its next generation goes out at once
        extended: set[str] = set()  # in-use volumes that have grown: their servers are told

        def apply(s: Session) -> None:
            # Raised by the database: two API processes applying reports of one row never move it back.
            s.execute(update(model).where(model.id == rid)
                      .values(observed_generation=greatest(model.observed_generation, observed))
                      .execution_options(synchronize_session=False))
            row: Volume | Snapshot | None = s.get(Volume, rid) if kind == "volume" else s.get(Snapshot, rid)
            if row is None:
                return
            state = st.get("state")
            if state == "deleted":
                if row.status == "deleting":
                    s.delete(row)
                    self.svc.groups.settle(s, row)
                return
            if observed < row.generation:
                return  # about an older desired state; the newer one is on its way
            migration = (row.doc or {}).get("migration") if isinstance(row, Volume) else None
            if isinstance(row, Volume) and row.migration_status == "migrating" and migration and (
                    state == "error" or (state == "ready" and st.get("migrated") == migration["name_id"])):
                self._migration_done(s, row, state == "ready", str(st.get("reason") or ""))
                switched.append(row.id)
                return
            if state == "error":
                reason = str(st.get("reason") or "the volume agent failed")[:1000]
                log.warning("%s %s: %s", kind, rid, reason)
                row.fault = reason
                event = _event_for(row)
                if event is not None:  # once, on the transition: reports repeat
                    self.svc.messages.record(s, row.project_id, "VOLUME" if isinstance(row, Volume)
                                             else "VOLUME_SNAPSHOT", row.id, *event, reason=reason)
                if isinstance(row, Volume) and row.status == "uploading":
                    row.status, row.previous_status = row.previous_status or "available", None
                elif row.status in _ERROR_FOR:
                    row.status = _ERROR_FOR[row.status]
                row.updated_at = utcnow()
            elif state == "ready":
                row.fault = None
                if isinstance(row, Volume):
                    if row.status == "extending" and row.previous_status == "in-use":
                        extended.add(row.id)
                    self._volume_ready(row, st)
                elif row.status == "creating":
                    row.status, row.updated_at = "available", utcnow()
            self.svc.groups.settle(s, row)  # a group or group snapshot follows its members

        await self.svc.write(apply)
        for vid in switched:
            self.publisher.enqueue(f"volume:{vid}")
        for vid in sorted(extended):
            await self.svc.volumes.notify_extended(vid)

    def _migration_done(self, s: Session, vol: Volume, copied: bool, reason: str) -> None:
        """The agent finished a migration's copy, or failed it. On success the volume switches to the copy in one
        step (its backend, its ``name_id``, a retype's new type) and the old file is retired; on failure the copy
        is retired and the volume stays where it was. Either way the next generation tells the agent."""
        migration = dict(vol.doc["migration"])
        here = {"backend": vol.backend or self.svc.settings.backend_name, "name": vol.name_id or vol.id}
        there = {"backend": migration["backend"], "name": migration["name_id"]}
        retired = [r for r in (vol.doc.get("retired") or []) if r not in (here, there)][-4:]
        values: dict[str, Any] = {"updated_at": utcnow(), "doc": {**vol.doc, "migration": None,
                                                                    "retired": [*retired, there if not copied else here]}}
        if copied:
            values.update(backend=migration["backend"], name_id=migration["name_id"], migration_status="success",
                          fault=None)
            if migration.get("new_type"):
                values["volume_type_id"] = migration["new_type"]
        else:
            log.warning("volume %s: migration to %s failed: %s", vol.id, migration["backend"], reason)
            values.update(migration_status="error", fault=reason[:1000] or "the migration failed")
        if vol.status in ("maintenance", "retyping"):
            values.update(status=vol.previous_status or "available", previous_status=None)
        desired.bump_or_lose(s, Volume, vol.id, vol.generation, values)

    @staticmethod
    def _volume_ready(vol: Volume, st: dict[str, Any]) -> None:
        if vol.status == "creating":
            vol.status, vol.launched_at = "available", utcnow()
        elif vol.status == "extending":
            vol.status, vol.previous_status = vol.previous_status or "available", None
        elif vol.status == "uploading":
            wanted = int((vol.doc.get("upload") or {}).get("seq") or 0)
            if int(st.get("upload_seq") or 0) >= wanted:
                vol.status, vol.previous_status = vol.previous_status or "available", None
        else:
            return
        vol.updated_at = utcnow()


def _event_for(row: Volume | Snapshot) -> tuple[str, str] | None:
    """The user message (action, detail) an agent error in the row's current status records, if any."""
    if isinstance(row, Snapshot):
        return {"creating": ("SNAPSHOT_CREATE", "SNAPSHOT_CREATE_ERROR"),
                "deleting": ("SNAPSHOT_DELETE", "SNAPSHOT_DELETE_ERROR")}.get(row.status)
    if row.status == "creating":
        return ("COPY_IMAGE_TO_VOLUME", "UNKNOWN_ERROR") if row.image_id else (
            "CREATE_VOLUME_FROM_BACKEND", "DRIVER_FAILED_CREATE")
    return {"extending": ("EXTEND_VOLUME", "DRIVER_FAILED_EXTEND"),
            "uploading": ("COPY_VOLUME_TO_IMAGE", "FAILED_TO_UPLOAD_VOLUME")}.get(row.status)
