"""What the volume agent reports on ``status.volume``: a resource ready or in error with its size and upload
state, only when it changed (docs/contracts.md)."""

from __future__ import annotations

import json
from typing import Any

from tinystack.core.bus import Bus
from tinystack.volume.agent_records import Record, Records, split_key
from tinystack.volume.drivers.base import VolumeDriver, size_gb


class Reporting:
    """Mixin of ``VolumeAgent``, which sets these attributes."""

    bus: Bus
    host: str
    driver: VolumeDriver
    records: Records
    _published: dict[str, str]  # the last status sent per key
    _closing: bool

    async def _publish_ready(self, key: str, generation: int) -> None:
        kind, rid = split_key(key)
        if kind == "volume":
            size = await self.driver.volume_size(rid) or 0
            status: dict[str, Any] = {"state": "ready", "size_gb": size_gb(size),
                                      **self._upload_status(self.records.load(key))}
        else:
            status = {"state": "ready", "size_gb": size_gb(await self.driver.snapshot_size(rid) or 0)}
        await self._publish(key, generation, status)

    async def _publish_error(self, key: str, generation: int, reason: str) -> None:
        kind, rid = split_key(key)
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
        kind, rid = split_key(key)
        await self.bus.publish("status.volume", {"type": kind, "id": rid, "host": self.host,
                                                 "observed_generation": generation, "status": status})
