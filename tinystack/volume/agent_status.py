"""What the volume agent reports on ``status.volume``: a resource ready or in error with its size and upload
state, only when it changed (docs/contracts.md)."""

from __future__ import annotations

import json
from typing import Any

from tinystack.core.bus import Bus, SentReports, publish_changed
from tinystack.volume.agent_records import Record, Records, Spec, split_key
from tinystack.volume.drivers.base import DriverError, VolumeDriver, size_gb


class Reporting:
    """Mixin of ``VolumeAgent``, which sets these attributes."""

    bus: Bus
    host: str
    driver: VolumeDriver
    drivers: dict[str, VolumeDriver]  # backend name -> its driver, the default (``driver``) first
    default_backend: str
    records: Records
    _specs: dict[str, tuple[int, Spec, float]]
    _published: SentReports  # the last status sent per key
    _closing: bool

    # -- where a resource's file is -----------------------------------------------------------------------

    def _backend(self, name: Any) -> VolumeDriver:
        driver = self.drivers.get(str(name or self.default_backend))
        if driver is None:
            raise DriverError(f"backend {name!r} is not enabled on volume host {self.host}", permanent=True)
        return driver

    def _location(self, spec: Spec) -> tuple[str, str]:
        """(backend, name) of a volume document's file: named after ``name_id`` once migrated, else the id."""
        return str(spec.get("backend") or self.default_backend), str(spec.get("name_id") or spec["id"])

    def _owners(self) -> dict[tuple[str, str], str]:
        """Where each volume document puts its file (and the copy a migration is making) -> its key."""
        owners: dict[tuple[str, str], str] = {}
        for key, (_, spec, _) in self._specs.items():
            if split_key(key)[0] == "volume":
                owners[self._location(spec)] = key
                migration = spec.get("migration") or {}
                if migration.get("name_id"):
                    owners[(str(migration.get("backend") or self.default_backend), str(migration["name_id"]))] = key
        return owners

    async def _size_of(self, key: str) -> int | None:
        kind, rid = split_key(key)
        entry = self._specs.get(key)
        spec: Spec = entry[1] if entry is not None else {"id": rid}
        if kind == "volume":
            backend, name = self._location(spec)
            return await self._backend(backend).volume_size(name)
        return await self._backend(spec.get("backend")).snapshot_size(rid)

    async def _publish_ready(self, key: str, generation: int) -> None:
        kind, _ = split_key(key)
        status: dict[str, Any] = {"state": "ready", "size_gb": size_gb(await self._size_of(key) or 0)}
        if kind == "volume":
            status.update(self._upload_status(self.records.load(key)))
            entry = self._specs.get(key)
            migration = (entry[1].get("migration") if entry is not None else None) or {}
            if migration.get("name_id"):
                # The copy on the destination backend is complete: the controller may switch the volume to it.
                status["migrated"] = str(migration["name_id"])
        await self._publish(key, generation, status)

    async def _publish_error(self, key: str, generation: int, reason: str) -> None:
        kind, _ = split_key(key)
        status: dict[str, Any] = {"state": "error", "reason": reason}
        try:
            size = await self._size_of(key)
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
        # Nothing new to say is not said again (the timer re-reconciles everything).
        kind, rid = split_key(key)
        await publish_changed(self.bus, self._published, key, json.dumps([generation, status], sort_keys=True),
                              "status.volume", {"type": kind, "id": rid, "host": self.host,
                                                "observed_generation": generation, "status": status})
