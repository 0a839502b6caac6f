"""How the volume agent brings one ``volume`` or ``snapshot`` to its document: create (waiting for a source),
extend, upload, its NBD exports (one per attachment), remove; failures counted per generation, transient ones
retried."""

from __future__ import annotations

import asyncio
import logging
import time

from tinystack.core.reconcile import DONE, Reconciler, Result
from tinystack.volume.agent_records import Record, Spec, reason_of, split_key
from tinystack.volume.agent_status import Reporting
from tinystack.volume.drivers.base import DriverError, Exporter, GiB, VolumeDriver
from tinystack.volume.drivers.nbd import Export

# The agent's own logger, so its lines keep the name operators filter on.
log = logging.getLogger("tinystack.volume.agent")

# Transient failures (the image API down, a copy interrupted) are retried this many times per generation before
# the resource goes to error; permanent ones (an image too large for the volume) go at once.
MAX_ATTEMPTS = 3


class _Again(Exception):
    """A transient failure already counted against its generation: the reconciler tries again."""


class Converge(Reporting):
    """Mixin of ``VolumeAgent``, which sets these attributes."""

    source_timeout: float
    poll_interval: float
    reconciler: Reconciler
    _specs: dict[str, tuple[int, Spec, float]]
    _doomed: dict[str, int | None]
    _attempts: dict[tuple[str, int | None], int]
    _waiting: dict[tuple[str, int], float]
    _waiters: dict[str, set[str]]
    _doomed_names: dict[str, list[str]]
    exporter: Exporter | None

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
            if split_key(key)[0] == "volume":
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
            record.failed_gen, record.reason = generation, reason_of(exc)
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
            kind, rid = split_key(source)
            raise DriverError(f"{kind} {rid} not found after waiting {self.source_timeout:g}s", permanent=True)
        self._waiters.setdefault(source, set()).add(key)
        return Result(requeue_after=self.poll_interval)

    async def _converge_volume(self, key: str, generation: int, spec: Spec, record: Record) -> Result | None:
        backend, rid = self._location(spec)
        d = self._backend(backend)
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
                # A clone is made on its source's backend; a migrated source volume's file has its name_id.
                source["id"] = str(source.get("name") or source.get("id"))
                found = await (d.volume_size(source["id"]) if source["type"] == "volume"
                               else d.snapshot_size(source["id"]))
                if found is None:
                    return self._wait_for(key, generation, f"{source['type']}:{spec['source'].get('id')}")
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
                record.upload_error = {"seq": seq, "reason": reason_of(exc)}
                self.records.save(key, record)
                raise DriverError(record.upload_error["reason"], permanent=True) from exc
            else:
                record.upload_seq, record.upload_error = seq, None
        await self._migrate(spec, d, rid, wanted)
        for old in spec.get("retired") or []:
            # Copies this volume no longer lives in (the source of a finished migration, the destination of a
            # failed one): removed here, so a restart between the switch and the removal leaves nothing behind.
            if isinstance(old, dict) and (old.get("backend"), old.get("name")) != (backend, rid) and \
                    str(old.get("backend")) in self.drivers and old.get("name"):
                await self.drivers[str(old["backend"])].delete_volume(str(old["name"]))
        await self._converge_exports(d, rid, spec)
        record.failed_gen, record.reason = None, None
        self.records.save(key, record)
        return None

    async def _migrate(self, spec: Spec, source: VolumeDriver, name: str, size_gb: int) -> None:
        """The document's ``migration``: copy the volume's data into a new file on the destination backend, named
        after the migration's ``name_id``; the source file stays until the controller has switched the volume."""
        migration = spec.get("migration") or {}
        if not migration.get("name_id"):
            return
        dest, new_name = self._backend(migration.get("backend")), str(migration["name_id"])
        if await dest.volume_size(new_name) is None:
            await dest.copy_volume(new_name, size_gb, source, name)
            log.info("volume %s: copied to backend %s as %s", spec["id"], migration.get("backend"), new_name)

    async def _converge_exports(self, d: VolumeDriver, name: str, spec: Spec) -> None:
        """Serve exactly the exports the document lists for this volume (its attachments from other machines),
        of its file ``name`` on backend ``d``."""
        wanted = {e.attachment_id: e for e in (Export.parse(dict(x)) for x in spec.get("exports") or [])}
        if self.exporter is None:
            if wanted:
                raise DriverError("the volume has attachments to export but this node has no NBD server "
                                  "([volume] nbd_host)", permanent=True)
            return
        path = d.volume_path(name)
        served = {a for a, p in (await self.exporter.exports()).items() if p == path}
        for attachment_id in sorted(served - set(wanted)):
            await self.exporter.remove(attachment_id)
        for export in wanted.values():
            # Served ones too: an export of a volume that has grown is served again at the new size.
            await self.exporter.ensure(export, path)

    async def _drop_exports(self) -> None:
        """End every export of a file no volume document names: gone volumes, an agent's leftovers."""
        if self.exporter is None:
            return
        paths = set()
        for key, (_, spec, _) in self._specs.items():
            if split_key(key)[0] == "volume":
                backend, name = self._location(spec)
                if backend in self.drivers:
                    paths.add(self.drivers[backend].volume_path(name))
        for attachment_id, path in sorted((await self.exporter.exports()).items()):
            if path not in paths:
                log.info("ending export of attachment %s (%s): no document wants it", attachment_id, path)
                await self.exporter.remove(attachment_id)

    async def _converge_snapshot(self, key: str, generation: int, spec: Spec) -> Result | None:
        d, rid = self._backend(spec.get("backend")), spec["id"]
        if await d.snapshot_size(rid) is None:
            volume_id = spec.get("volume_id")
            if not isinstance(volume_id, str) or not volume_id:
                raise DriverError("snapshot document without a volume_id", permanent=True)
            volume_name = str(spec.get("volume_name") or volume_id)
            if await d.volume_size(volume_name) is None:
                return self._wait_for(key, generation, f"volume:{volume_id}")
            await d.create_snapshot(rid, volume_name)
        record = self.records.load(key)
        if record.failed_gen is not None:
            self.records.save(key, Record())
        return None

    async def _remove(self, key: str) -> Result:
        generation = self._doomed[key]
        kind, rid = split_key(key)
        try:
            if kind == "volume":
                await self._drop_exports()
                # Whichever backend holds it, under its id or (migrated) its name_id; never a file another
                # volume's document puts its own volume in.
                owners = self._owners()
                for name in {rid, *self._doomed_names.get(key, [])}:
                    for backend, driver in self.drivers.items():
                        if (backend, name) not in owners:
                            await driver.delete_volume(name)
            else:
                for driver in self.drivers.values():
                    await driver.delete_snapshot(rid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._again(key, generation, exc):
                raise
            log.exception("%s: removing failed; trying again on the next resync", key)
            if generation is not None:
                await self._publish_error(key, generation, reason_of(exc))
            return Result(terminal=True)
        self._attempts.pop((key, generation), None)
        self.records.delete(key)
        self._doomed.pop(key, None)
        self._doomed_names.pop(key, None)
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
