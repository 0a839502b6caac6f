"""The conductor's side of a live migration between two nodes (docs/contracts.md, "Moving guests").

1. The ports are also bound to the destination (``binding:profile`` ``migrating_to``), so its network agent
   plugs their taps there; the destination agent gets the instance document with ``migration`` and starts a
   QEMU that waits for the guest, then reports ``listening`` with the URI.
2. The source agent gets the document again with the URI; it sends the guest and reports ``completed``.
3. ``Lifecycle.finish_live_migration`` moves the server's host and the ports' binding to the destination.

Any ``error`` report (or no progress within the deadlines) aborts: the migration record is ``error``, the
allocation and ports go back to the source, which keeps running the guest, and the destination drops its
waiting QEMU.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from tinystack.compute.models import Instance, Migration, utcnow
from tinystack.compute.settle import set_migration_status
from tinystack.core import desired

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

log = logging.getLogger(__name__)

# Seconds the destination may take to listen (plugging taps, starting QEMU), and the whole move may take.
LISTEN_DEADLINE = 120.0
MOVE_DEADLINE = 900.0


class LiveMigrations:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def _current(self, iid: str, mid: Any) -> bool:
        with self.svc.session() as s:
            inst = s.get(Instance, iid)
            return (inst is not None and not inst.deleted and inst.task_state == "migrating"
                    and str((inst.doc.get("migration") or {}).get("id")) == str(mid))

    async def start(self, iid: str) -> None:
        """Step 1: bind the ports to the destination too, and ask its agent to wait for the guest."""
        conductor = self.svc.conductor
        with self.svc.session() as s:
            inst = s.get(Instance, iid)
            if inst is None or inst.deleted or inst.task_state != "migrating":
                return
            mig = dict(inst.doc.get("migration") or {})
            set_migration_status(s, inst, "preparing")
        try:
            await asyncio.to_thread(conductor.net.set_migrating_to, inst, mig["dest_host"])
        except Exception as exc:
            log.exception("live migration of %s: binding its ports on %s failed", iid, mig["dest_host"])
            await self.abort(iid, mig.get("id"), f"binding the ports on {mig['dest_host']} failed: {exc}")
            return
        inst = conductor._load(iid)
        if inst is None:
            return
        await self.svc.bus.publish(f"agent.compute.{mig['dest_host']}", {
            "op": "put", "type": "instance", "id": iid, "generation": inst.generation, "spec": conductor.doc(inst)})
        conductor.spawn(self._watch(iid, mig.get("id")))

    async def _watch(self, iid: str, mid: Any) -> None:
        await asyncio.sleep(LISTEN_DEADLINE)
        with self.svc.session() as s:
            row = s.get(Migration, mid) if mid else None
            waiting = row is not None and row.status == "preparing"
        if waiting and self._current(iid, mid):
            await self.abort(iid, mid, f"the destination did not get ready within {LISTEN_DEADLINE:.0f}s")
            return
        await asyncio.sleep(MOVE_DEADLINE - LISTEN_DEADLINE)
        if self._current(iid, mid):
            await self.abort(iid, mid, f"the live migration did not finish within {MOVE_DEADLINE:.0f}s")

    async def on_report(self, iid: str, host: str, report: dict[str, Any]) -> None:
        """An agent's ``migration`` status: listening (destination), completed (source), error (either)."""
        mid, state = report.get("id"), report.get("state")
        if not self._current(iid, mid):
            return  # a late or duplicate report about a migration already settled
        if state == "listening":
            await self._send(iid, host, str(report.get("uri") or ""))
        elif state == "completed":
            await self.svc.lifecycle.finish_live_migration(iid)
        elif state == "error":
            await self.abort(iid, mid, str(report.get("message") or "the agent reported an error"))

    async def _send(self, iid: str, host: str, uri: str) -> None:
        """Step 2: the destination listens; give the source the URI (a new generation of its document)."""
        def attempt() -> bool:
            with self.svc.session() as s:
                inst = s.get(Instance, iid)
                if inst is None:
                    return False
                mig = dict(inst.doc.get("migration") or {})
                if host != mig.get("dest_host") or mig.get("uri") == uri or not uri:
                    return False
                desired.bump_or_lose(s, Instance, iid, inst.generation,
                                     {"doc": {**inst.doc, "migration": {**mig, "uri": uri}}})
                set_migration_status(s, inst, "running")
                return True

        if desired.retry(attempt, what=f"Instance {iid}"):
            await self.svc.conductor.publish(iid)

    async def abort(self, iid: str, mid: Any, message: str) -> None:
        """The guest stays on the source: record ``error``, allocation and ports back, the destination cleared."""
        log.warning("live migration of %s failed: %s", iid, message)
        def attempt() -> tuple[Instance, dict[str, Any], int] | None:
            with self.svc.session() as s:
                inst = s.get(Instance, iid)
                if inst is None or inst.deleted:
                    return None
                mig = dict(inst.doc.get("migration") or {})
                if str(mig.get("id")) != str(mid):
                    return None
                set_migration_status(s, inst, "error")
                generation = desired.bump_or_lose(s, Instance, iid, inst.generation, {
                    "task_state": None, "vm_state": inst.doc.get("target", inst.vm_state),
                    "doc": {k: v for k, v in inst.doc.items() if k != "migration"}, "updated_at": utcnow()})
                self.svc.actions.finish(s, iid, "Error", inst.host, f"Live migration failed: {message}")
                return inst, mig, generation

        found = desired.retry(attempt, what=f"Instance {iid}")
        if found is None:
            return
        inst, mig, generation = found
        conductor = self.svc.conductor
        if not conductor.placer.move(inst, mig.get("source_host") or inst.host or "", inst.flavor):
            log.warning("live migration of %s: could not move its allocation back to %s", iid, mig.get("source_host"))
        try:
            await asyncio.to_thread(conductor.net.set_migrating_to, inst, None)
        except Exception:
            log.exception("live migration of %s: unbinding its ports from %s failed", iid, mig.get("dest_host"))
        await conductor.publish(iid)
        if mig.get("dest_host"):
            await self.svc.bus.publish(f"agent.compute.{mig['dest_host']}",
                                       {"op": "delete", "type": "instance", "id": iid, "generation": generation})
