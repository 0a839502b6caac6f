"""The API side of the backup agent's contract (docs/contracts.md): sends each backup's desired state to its
volume host on ``agent.backup.<host>``, and maps the agent's ``status.backup`` reports onto the statuses of the
backup and of the volume it reads or writes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tinystack.core import desired
from tinystack.core.db import greatest
from tinystack.volume.models import Backup, Volume, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

log = logging.getLogger(__name__)


class BackupController:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc
        self._started = False
        self.publisher = desired.Publisher("volume-backup", self._publish_key, self._pending, self._sync_hosts,
                                           interval=svc.config.sync_interval)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.svc.bus.subscribe("status.backup", self.on_status, group="volume")
        self.svc.bus.subscribe("resync.backup", self.on_resync, group="volume")
        await self.publisher.start()

    async def stop(self) -> None:
        await self.publisher.stop()

    def publish_soon(self, backup_id: str) -> None:
        """The row is committed: hurry its publish along (callable from the rules' worker threads)."""
        self.publisher.enqueue_threadsafe(backup_id)

    def message(self, s: Session, row: Backup) -> dict[str, Any]:
        where = {"container": row.container, "prefix": row.prefix}
        if row.status == "deleting":
            return {"op": "delete", "type": "backup", "id": row.id, "generation": row.generation, "spec": where}
        parent = s.get(Backup, row.parent_id) if row.parent_id else None
        # Which file: the volume's backend directory and, once migrated, its name_id (the agent has no database).
        source = s.get(Volume, row.volume_id) if row.volume_id else None
        restore = row.doc.get("restore")
        if restore:
            target = s.get(Volume, restore.get("volume_id"))
            restore = {**restore, "backend": target.backend if target else None,
                       "name_id": target.name_id if target else None}
        spec = {"id": row.id, **where, "mode": row.doc.get("mode") or "backup", "volume_id": row.volume_id,
                "snapshot_id": row.snapshot_id, "size_gb": row.size,
                "volume_backend": source.backend if source else None,
                "volume_name_id": source.name_id if source else None,
                "parent": {"id": parent.id, "container": parent.container, "prefix": parent.prefix} if parent else None,
                "restore": restore}
        return {"op": "put", "type": "backup", "id": row.id, "generation": row.generation, "spec": spec}

    async def _publish_key(self, rid: str) -> None:
        def load(s: Session) -> tuple[str, dict[str, Any], int] | None:
            row = s.get(Backup, rid)
            return None if row is None or not row.host else (row.host, self.message(s, row), row.generation)

        found = await self.svc.read(load)
        if found is None:
            return
        host, msg, generation = found
        await self.svc.bus.publish(f"agent.backup.{host}", msg)
        await self.svc.write(lambda s: desired.mark_published(s, Backup, rid, generation))

    async def _pending(self) -> list[str]:
        return await self.svc.read(lambda s: list(s.scalars(
            select(Backup.id).where(Backup.host.is_not(None), desired.ahead(Backup)))))

    async def _sync_hosts(self) -> None:
        hosts = await self.svc.read(lambda s: {h for h in s.scalars(select(Backup.host).distinct()) if h})
        for host in sorted(hosts | set(self.svc.controller.heartbeats)):
            await self.on_resync({"host": host})

    async def on_resync(self, msg: dict[str, Any]) -> None:
        """An agent (re)started, or the periodic sync: every backup on the host, then the list of them."""
        host = msg.get("host")
        if not isinstance(host, str):
            return
        messages = await self.svc.read(
            lambda s: [self.message(s, r) for r in s.scalars(select(Backup).where(Backup.host == host))])
        for m in messages:
            await self.svc.bus.publish(f"agent.backup.{host}", m)
        await self.svc.bus.publish(f"agent.backup.{host}", {"op": "sync", "ids": [m["id"] for m in messages]})

    async def on_status(self, msg: dict[str, Any]) -> None:
        rid, st = msg.get("id"), msg.get("status") or {}
        observed = int(msg.get("observed_generation") or 0)
        if msg.get("type") != "backup" or not isinstance(rid, str):
            return

        def apply(s: Session) -> None:
            s.execute(update(Backup).where(Backup.id == rid)
                      .values(observed_generation=greatest(Backup.observed_generation, observed))
                      .execution_options(synchronize_session=False))
            row = s.get(Backup, rid)
            if row is None:
                return
            state = st.get("state")
            if state == "deleted":
                if row.status == "deleting":
                    s.delete(row)
                return
            if observed < row.generation:
                return  # about an older desired state; the newer one is on its way
            restore = row.doc.get("restore") or {}
            target = restore.get("volume_id")
            if state == "error":
                reason = str(st.get("reason") or "the backup agent failed")[:1000]
                log.warning("backup %s: %s", rid, reason)
                row.fail_reason, row.updated_at = reason, utcnow()
                if row.status == "creating":
                    row.status = "error"
                    if row.snapshot_id is None:
                        volume_back(s, row.volume_id, "backing-up")
                elif row.status == "restoring":
                    row.status = "available"  # the backup is intact; the volume it was written into is not
                    if target:
                        volume_back(s, str(target), "restoring-backup", "error_restoring")
                elif row.status == "deleting":
                    row.status = "error_deleting"
                return
            if state != "ready":
                return
            if row.status == "creating":
                row.status, row.fail_reason = "available", None
                row.object_count = int(st.get("object_count") or row.object_count)
                row.updated_at = utcnow()
                if row.snapshot_id is None:
                    volume_back(s, row.volume_id, "backing-up")
            elif row.status == "restoring" and int(st.get("restore_seq") or 0) >= int(restore.get("seq") or 0):
                row.status, row.updated_at = "available", utcnow()
                if target:
                    vol = s.get(Volume, str(target))
                    if vol is not None and vol.launched_at is None:
                        vol.launched_at = utcnow()
                    volume_back(s, str(target), "restoring-backup", "available")

        await self.svc.write(apply)


def volume_back(s: Session, volume_id: str, status: str, to: str | None = None) -> None:
    """The volume leaves ``status`` (backing-up, restoring-backup) for ``to`` or what it was before."""
    vol = s.get(Volume, volume_id)
    if vol is not None and vol.status == status:
        vol.status, vol.previous_status = to or vol.previous_status or "available", None
        vol.updated_at = utcnow()
