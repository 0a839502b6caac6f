"""The conductor's side of the agents' reports: ``status.compute`` folded into the server's row (Nova's states
come from ``settle``), ``network-changed`` events and compute heartbeats."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tinystack.compute.conductor_delete import Deleting
from tinystack.compute.livemigration import LiveMigrations
from tinystack.compute.models import Instance, utcnow


class Reports(Deleting):
    """Mixin of ``Conductor``, which sets these attributes."""

    live: LiveMigrations

    async def on_status(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "node":
            self.svc.admin.upsert_node(msg.get("host") or msg.get("id") or "", msg.get("status") or {})
        elif kind == "instance":
            await self._instance_status(msg)

    async def _instance_status(self, msg: dict[str, Any]) -> None:
        from tinystack.compute.settle import settle

        iid = msg.get("id")
        st = msg.get("status") or {}
        observed = int(msg.get("observed_generation") or 0)
        if isinstance(st.get("migration"), dict) and isinstance(iid, str):
            await self.live.on_report(iid, str(msg.get("host") or ""), st["migration"])
            return
        with self.svc.session() as s:
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
            after = settle(self.svc, s, inst, st, observed)
            inst.updated_at = utcnow()
        if isinstance(st.get("volumes"), list) and after != "deleted":
            refused = st.get("detach_failed") if isinstance(st.get("detach_failed"), dict) else None
            self.svc.volumes.on_status(inst.id, [str(v) for v in st["volumes"]], observed, refused)
        if after == "deleted":
            await self._finalize_delete(inst.id)
        elif after == "offload":
            await self.svc.lifecycle.offload(inst.id)

    async def on_network_event(self, msg: dict[str, Any]) -> None:
        """``network-changed`` (a port's floating IPs moved): read the server's ports again into ``addresses``."""
        iid = msg.get("server_uuid")
        if msg.get("name") != "network-changed" or not isinstance(iid, str):
            return
        inst = self._load(iid)
        if inst is None or inst.deleted:
            return
        addresses = await asyncio.to_thread(self.net.refresh, inst)
        if addresses is None:
            return
        with self.svc.session() as s:
            row = s.get(Instance, iid)
            if row is not None and not row.deleted:
                row.addresses = addresses

    async def on_heartbeat(self, msg: dict[str, Any]) -> None:
        if msg.get("agent") != "compute" or not isinstance(msg.get("host"), str):
            return
        self.svc.admin.heartbeat(msg["host"], "nova-compute", float(msg.get("time") or time.time()))
