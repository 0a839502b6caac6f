"""The conductor's side of the agents' reports: ``status.compute`` folded into the server's row (Nova's states
come from ``settle``), ``network-changed`` events and compute heartbeats."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from tinystack.compute import states
from tinystack.compute.actions import Actions
from tinystack.compute.conductor_delete import Deleting
from tinystack.compute.models import Instance, utcnow
from tinystack.compute.settle import settle
from tinystack.core import desired


class Reports(Deleting):
    """Mixin of ``Conductor``, which sets these attributes."""

    async def on_status(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "node":
            self.hosts.upsert_node(msg.get("host") or msg.get("id") or "", msg.get("status") or {})
        elif kind == "instance":
            await self._instance_status(msg)

    async def _instance_status(self, msg: dict[str, Any]) -> None:
        iid = msg.get("id")
        st = msg.get("status") or {}
        observed = int(msg.get("observed_generation") or 0)
        if isinstance(st.get("migration"), dict) and isinstance(iid, str):
            await self.live.on_report(iid, str(msg.get("host") or ""), st["migration"])
            return
        with self.session() as s:
            inst = s.get(Instance, iid) if isinstance(iid, str) else None
            if inst is None or inst.deleted:
                return
            if msg.get("host") and inst.host and msg["host"] != inst.host and not inst.doc.get("migration"):
                return  # a stale report from a host the server has left
            if st.get("console_log"):
                inst.console_log = st["console_log"]
            if st.get("diagnostics"):
                inst.diagnostics = st["diagnostics"]
            if "power_state" in st:
                inst.power_state = int(st["power_state"])
            inst.observed_generation = max(inst.observed_generation, observed)
            after = settle(s, inst, st, observed)
            inst.updated_at = utcnow()
        if isinstance(st.get("volumes"), list) and after != "deleted":
            refused = st.get("detach_failed") if isinstance(st.get("detach_failed"), dict) else None
            self.volumes.on_status(inst.id, [str(v) for v in st["volumes"]], observed, refused)
        if after == "deleted":
            await self._finalize_delete(inst.id)
        elif after == "offload":
            await self.offload(inst.id)

    async def offload(self, sid: str) -> None:
        """Shelving is done: the guest leaves its host (Nova's shelve offload). The old host's delete is among
        the row's messages (``offloaded_from``) until it went out."""
        def attempt() -> bool:
            with self.session() as s:
                inst = s.get(Instance, sid)
                if inst is None or inst.deleted:
                    return False
                host = inst.host
                doc = {**inst.doc, "offloaded_from": host} if host else dict(inst.doc)
                if host:
                    doc.setdefault("ports_host", host)
                desired.bump_or_lose(s, Instance, sid, inst.generation, {
                    "vm_state": states.SHELVED_OFFLOADED, "task_state": None, "power_state": states.SHUTDOWN,
                    "host": None, "doc": doc})
                Actions.finish(s, sid, "Success", host)
                return True

        if desired.retry(attempt, what=f"Instance {sid}"):
            self.placer.release(sid)
            await self.publish(sid)

    async def on_network_event(self, msg: dict[str, Any]) -> None:
        """``network-changed`` (a port's floating IPs moved): read the server's ports again into ``addresses``."""
        iid = msg.get("server_uuid")
        if msg.get("name") != "network-changed" or not isinstance(iid, str):
            return
        inst = self.load(iid)
        if inst is None or inst.deleted:
            return
        addresses = await asyncio.to_thread(self.net.refresh, inst)
        if addresses is None:
            return
        with self.session() as s:
            row = s.get(Instance, iid)
            if row is not None and not row.deleted:
                row.addresses = addresses

    async def sync_addresses(self) -> None:
        """``network-changed`` made level-triggered: each sync compares every server's floating addresses with
        the floating IPs on its ports and reads again those that differ, so a lost event delays them by one
        interval and loses nothing."""
        fips = await asyncio.to_thread(self.net.floating_by_port)
        if fips is None:
            return
        with self.session() as s:
            rows = s.execute(select(Instance.id, Instance.ports, Instance.addresses).where(
                Instance.deleted.is_(False))).all()
        for iid, ports, addresses in rows:
            have = {a.get("addr") for entries in (addresses or {}).values() for a in entries
                    if a.get("OS-EXT-IPS:type") == "floating"}
            want = {addr for p in ports or [] for addr in fips.get(p.get("port_id"), ())}
            if have != want:
                await self.on_network_event({"name": "network-changed", "server_uuid": iid})

    async def on_heartbeat(self, msg: dict[str, Any]) -> None:
        if msg.get("agent") != "compute" or not isinstance(msg.get("host"), str):
            return
        self.hosts.heartbeat(msg["host"], "nova-compute", float(msg.get("time") or time.time()))
