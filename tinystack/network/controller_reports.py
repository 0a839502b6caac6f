"""The network controller's bus handlers: an agent's resync, heartbeats (which decide the network host, where DHCP
and routers run) and ``status.network`` reports folded into port, router and floating IP statuses."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tinystack.network import admin
from tinystack.network.controller_documents import Documents
from tinystack.network.models import Agent, FloatingIP, Network, Port, PublishedDoc, Router

if TYPE_CHECKING:
    from tinystack.network.service import Changes

STATUSES = ("ACTIVE", "DOWN", "ERROR", "BUILD")


class Reports(Documents):
    """Mixin of ``Controller``, which sets these attributes."""

    def _latest_host(self) -> str | None:
        """The network host stays where it is while its agent lives: with several network agents (multi-node),
        following whichever sent the latest heartbeat would move DHCP and routers every few seconds. A process
        that has none yet takes the one the network ports are bound to in the database, so that every API process
        of a split cloud (one started, or restarted, after the agents) follows the same host."""
        with self.svc.session() as s:
            for host in (self._host, self._bound_host(s)):
                if not host:
                    continue
                row = s.scalar(select(Agent).where(Agent.agent_type == "L3 agent", Agent.host == host,
                                                   Agent.admin_state_up.is_(True)))
                if row is not None and admin.alive(self.svc, row):
                    return host
        return admin.network_host(self.svc)

    @staticmethod
    def _bound_host(s: Session) -> str | None:
        """The host the DHCP and router ports are bound to (``_set_host`` binds them all to one)."""
        return s.scalar(select(Port.host_id).where(Port.device_owner.like("network:%"), Port.host_id != "")
                        .order_by(Port.host_id).limit(1))

    async def on_resync(self, message: dict[str, Any]) -> None:
        host = str(message.get("host") or "")
        if not host:
            return
        if self._host is None:
            await self._set_host(host)
        await self._send(await asyncio.to_thread(self.resync, host))

    async def on_heartbeat(self, message: dict[str, Any]) -> None:
        if message.get("agent") != "network":
            return
        await asyncio.to_thread(admin.record_heartbeat, self.svc, message)
        latest = await asyncio.to_thread(self._latest_host)
        if latest is not None and latest != self._host:
            await self._set_host(latest)

    async def _set_host(self, host: str) -> None:
        """DHCP and routers move to ``host``: rebind their ports and republish every such document."""
        self._host = host

        def rebind(s: Session, changes: Changes) -> None:
            s.execute(update(Port).where(Port.device_owner.like("network:%"), Port.host_id != host)
                      .values(host_id=host))
            for net_id in s.scalars(select(Port.network_id).where(Port.device_owner == "network:dhcp")):
                changes.add(("network", net_id))
            for net_id in s.scalars(select(Network.id)):
                changes.add(("network", net_id))
            for router_id in s.scalars(select(Router.id)):
                changes.add(("router", router_id))

        await self.svc.apply(rebind)

    async def on_status(self, message: dict[str, Any]) -> None:
        await asyncio.to_thread(self.apply_status, message)

    def apply_status(self, message: dict[str, Any]) -> None:
        kind, ident, host = message.get("type"), str(message.get("id") or ""), str(message.get("host") or "")
        state = message.get("status") or {}
        status = str(state.get("status", "")).upper() if isinstance(state, dict) else ""
        if status not in STATUSES or not ident:
            return
        observed = int(message.get("observed_generation") or 0)

        def do(s: Session, changes: Changes) -> None:
            row = s.get(PublishedDoc, (kind, ident))
            if row is not None and observed < row.generation and status == "ACTIVE":
                return  # a newer document is on its way; ACTIVE for the old one says nothing about it
            if kind == "port":
                port = s.get(Port, ident)
                if port is not None and port.host_id == host:
                    port.status = status
            elif kind == "dhcp":
                s.execute(update(Port).where(Port.network_id == ident, Port.device_owner == "network:dhcp")
                          .values(status=status))
            elif kind == "router":
                router = s.get(Router, ident)
                if router is None:
                    return
                router.status = "ERROR" if status == "ERROR" else "ACTIVE"
                s.execute(update(Port).where(Port.device_id == ident, Port.device_owner.in_(
                    ("network:router_interface", "network:router_gateway"))).values(status=status))
                fip_status = "ACTIVE" if status == "ACTIVE" else ("ERROR" if status == "ERROR" else "DOWN")
                fips = update(FloatingIP).where(FloatingIP.router_id == ident, FloatingIP.port_id.is_not(None))
                applied = state.get("floating_ips")
                if isinstance(applied, list):
                    # Only those the agent's document carried: one associated since is not in force yet.
                    fips = fips.where(FloatingIP.id.in_([str(i) for i in applied]))
                s.execute(fips.values(status=fip_status))

        self.svc.transact(do)
