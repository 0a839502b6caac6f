"""The compute agent's part in moving a guest between nodes: a cold move's hand-over out and in (evacuation
takes it at once), and either end of a live migration, with its ``status.migration`` reports."""

from __future__ import annotations

import logging
import time
from typing import Any

from tinystack.compute.agent_records import Records, fresh_record
from tinystack.compute.agent_status import Reporting
from tinystack.compute.drivers.base import DriverError, Spec
from tinystack.core.reconcile import DONE, Result

log = logging.getLogger(__name__)

# A cold move's destination waits this long for the source node to hand the guest's files over.
HANDOVER_TIMEOUT = 120.0


class Moves(Reporting):
    """Mixin of ``ComputeAgent``, which sets these attributes."""

    records: Records
    power_off_timeout: float
    migration_timeout: float
    _doomed: dict[str, int | None]
    _deleted: dict[str, int]
    _waiting: dict[tuple[str, int], float]
    _sent: set[str]
    _listening: dict[str, str]

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
                self.records.save(iid, fresh_record(spec))
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
            self.records.save(iid, fresh_record(spec))
        return True

    async def _live_migration(self, iid: str, gen: int, spec: Spec, migration: dict[str, Any]) -> Result | None:
        """This node's part of a live migration; None when the document is to be converged as usual (the source
        before the destination listens, or after a failed attempt)."""
        mid = str(migration.get("id"))
        dest = str(migration.get("dest_host"))
        if dest == self.host:
            if (await self.driver.get_info(iid)).exists:
                self._listening.pop(mid, None)
                return None  # it has arrived
            if mid in self._listening:  # already listening: say so again, start nothing
                await self._migration_report(iid, gen, mid, "listening", uri=self._listening[mid])
                return DONE
            try:
                if not self.migration_address:
                    raise DriverError("this node has no live_migration_inbound_addr to receive guests on", permanent=True)
                uri = await self.driver.prepare_incoming(spec, self.migration_address)
            except Exception as exc:
                log.exception("instance %s: preparing for live migration %s failed", iid, mid)
                await self._migration_report(iid, gen, mid, "error", message=str(exc) or type(exc).__name__)
                return Result(terminal=True)
            self._listening[mid] = uri
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
