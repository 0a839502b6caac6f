"""The conductor's side of a live migration between two nodes (docs/contracts.md, "Moving guests").

1. ``prepare`` (stage ``bind``): the ports are also bound to the destination (``binding:profile`` ``migrating_to``),
   so its network agent plugs their taps there; a new generation (stage ``listen``) then gives the destination
   agent the instance document with ``migration``: it starts a QEMU that waits for the guest and reports
   ``listening`` with the URI.
2. The source agent gets the document again with the URI; it sends the guest and reports ``completed``.
3. ``finish`` moves the server's host to the destination; its ports follow (``ports_host`` in the doc).

Every step follows from the row, not from a message sent once: the publisher runs ``prepare`` for a row in stage
``bind`` (its generation is ahead of what went out until the step is done), the destination's put is among the
row's messages until the URI is known, and ``expire`` (housekeeping) aborts a move past its deadlines, whichever
process made it. Any ``error`` report aborts too: the migration record is ``error``, the allocation and ports go
back to the source, which keeps running the guest, and the destination drops its waiting QEMU.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.compute.actions import Actions
from tinystack.compute.models import Instance, Migration, utcnow
from tinystack.compute.netbind import NetBinder
from tinystack.compute.placing import Placer
from tinystack.compute.settle import set_migration_status
from tinystack.compute.states import ACTIVE
from tinystack.core import desired
from tinystack.core.bus import Bus

log = logging.getLogger(__name__)

# Seconds the destination may take to listen (plugging taps, starting QEMU), and the whole move may take.
LISTEN_DEADLINE = 120.0
MOVE_DEADLINE = 900.0
BIND, LISTEN = "bind", "listen"


class Publishing(Protocol):
    """The conductor's publishing, as a live migration uses it."""

    async def publish(self, iid: str) -> None: ...


def live(inst: Instance) -> dict[str, Any] | None:
    """The live migration the instance is in, if any."""
    mig = inst.doc.get("migration") or {}
    return mig if inst.task_state == "migrating" and mig.get("kind") == "live" else None


def destination_put(inst: Instance) -> bool:
    """Whether the destination is to get the document now: its ports are bound there, no URI yet."""
    mig = live(inst)
    return mig is not None and mig.get("stage", LISTEN) != BIND and not mig.get("uri") and bool(mig.get("dest_host"))


class LiveMigrations:
    def __init__(self, session: Callable[[], AbstractContextManager[Session]], bus: Bus, placer: Placer,
                 net: NetBinder, publishing: Publishing) -> None:
        self.session = session
        self.bus = bus
        self.placer = placer
        self.net = net
        self.publishing = publishing

    def _current(self, iid: str, mid: Any) -> bool:
        with self.session() as s:
            inst = s.get(Instance, iid)
            return (inst is not None and not inst.deleted and inst.task_state == "migrating"
                    and str((inst.doc.get("migration") or {}).get("id")) == str(mid))

    async def prepare(self, inst: Instance) -> None:
        """Step 1 for a row in stage ``bind``: bind the ports to the destination too, then the next stage (a new
        generation, whose messages ask the destination to wait for the guest). Run again after a crash, it
        binds again (nothing changes) and moves on."""
        mig = live(inst)
        if mig is None or mig.get("stage") != BIND:
            return
        try:
            await asyncio.to_thread(self.net.set_migrating_to, inst, mig["dest_host"])
        except Exception as exc:
            log.exception("live migration of %s: binding its ports on %s failed", inst.id, mig["dest_host"])
            await self.abort(inst.id, mig.get("id"), f"binding the ports on {mig['dest_host']} failed: {exc}")
            return

        def attempt() -> None:
            with self.session() as s:
                row = s.get(Instance, inst.id)
                now = live(row) if row is not None else None
                if row is None or now is None or now.get("id") != mig.get("id") or now.get("stage") != BIND:
                    return
                desired.bump_or_lose(s, Instance, row.id, row.generation,
                                     {"doc": {**row.doc, "migration": {**now, "stage": LISTEN}}})
                set_migration_status(s, row, "preparing")

        desired.retry(attempt, what=f"Instance {inst.id}")

    async def on_report(self, iid: str, host: str, report: dict[str, Any]) -> None:
        """An agent's ``migration`` status: listening (destination), completed (source), error (either)."""
        mid, state = report.get("id"), report.get("state")
        if not self._current(iid, mid):
            return  # a late or duplicate report about a migration already settled
        if state == "listening":
            await self._send(iid, host, str(report.get("uri") or ""))
        elif state == "completed":
            await self.finish(iid)
        elif state == "error":
            await self.abort(iid, mid, str(report.get("message") or "the agent reported an error"))

    async def _send(self, iid: str, host: str, uri: str) -> None:
        """Step 2: the destination listens; give the source the URI (a new generation of its document)."""
        def attempt() -> bool:
            with self.session() as s:
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
            await self.publishing.publish(iid)

    async def finish(self, sid: str) -> None:
        """Step 3: the guest runs on the destination; the server's host follows, and its ports with it."""
        def attempt() -> bool:
            with self.session() as s:
                inst = s.get(Instance, sid)
                if inst is None or inst.deleted:
                    return False
                mig = inst.doc.get("migration") or {}
                set_migration_status(s, inst, "completed")
                doc = {k: v for k, v in inst.doc.items() if k != "migration"}
                doc.setdefault("ports_host", inst.host)
                desired.bump_or_lose(s, Instance, sid, inst.generation, {
                    "host": mig.get("dest_host") or inst.host, "vm_state": inst.doc.get("target", ACTIVE),
                    "task_state": None, "doc": doc})
                Actions.finish(s, sid, "Success", inst.host)
                return True

        if desired.retry(attempt, what=f"Instance {sid}"):
            await self.publishing.publish(sid)

    def expire(self) -> list[tuple[str, Any, str]]:
        """The live migrations past a deadline, with why: the destination not listening within
        ``LISTEN_DEADLINE`` of the start, or the move not done within ``MOVE_DEADLINE``."""
        now = utcnow()
        out = []
        with self.session() as s:
            for inst in s.scalars(select(Instance).where(Instance.deleted.is_(False),
                                                         Instance.task_state == "migrating")):
                mig = live(inst)
                row = s.get(Migration, mig.get("id")) if mig and mig.get("id") else None
                if mig is None or row is None:
                    continue
                started = row.created_at
                if row.status in ("queued", "preparing") and now - started > timedelta(seconds=LISTEN_DEADLINE):
                    why = f"the destination did not get ready within {LISTEN_DEADLINE:.0f}s"
                elif now - started > timedelta(seconds=MOVE_DEADLINE):
                    why = f"the live migration did not finish within {MOVE_DEADLINE:.0f}s"
                else:
                    continue
                out.append((inst.id, mig.get("id"), why))
        return out

    async def abort_expired(self) -> None:
        for iid, mid, why in await asyncio.to_thread(self.expire):
            await self.abort(iid, mid, why)

    async def abort(self, iid: str, mid: Any, message: str) -> None:
        """The guest stays on the source: record ``error``, allocation and ports back, the destination cleared."""
        log.warning("live migration of %s failed: %s", iid, message)

        def attempt() -> tuple[Instance, dict[str, Any], int] | None:
            with self.session() as s:
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
                Actions.finish(s, iid, "Error", inst.host, f"Live migration failed: {message}")
                return inst, mig, generation

        found = desired.retry(attempt, what=f"Instance {iid}")
        if found is None:
            return
        inst, mig, generation = found
        if not self.placer.move(inst, mig.get("source_host") or inst.host or "", inst.flavor):
            log.warning("live migration of %s: could not move its allocation back to %s", iid, mig.get("source_host"))
        try:
            await asyncio.to_thread(self.net.set_migrating_to, inst, None)
        except Exception:
            log.exception("live migration of %s: unbinding its ports from %s failed", iid, mig.get("dest_host"))
        await self.publishing.publish(iid)
        # The destination drops its waiting QEMU. This is the fast path: the row no longer sends the guest there,
        # so the destination's next sync drops it as well when this message is lost.
        if mig.get("dest_host"):
            await self.bus.publish(f"agent.compute.{mig['dest_host']}",
                                   {"op": "delete", "type": "instance", "id": iid, "generation": generation})
