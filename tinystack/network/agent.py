"""The network agent: keeps this host's dataplane equal to the desired state the controller publishes.

It consumes ``agent.network.<host>`` (put/delete/sync of network, dhcp, port and router documents, see
docs/contracts.md), reconciles each ``type:id`` key plus two host-wide keys (``firewall``, ``gc``) with
one level-triggered ``Reconciler``, and reports on ``status.network``. It never reads the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from tinystack.core.bus import Bus, SentReports, publish_changed
from tinystack.core.reconcile import DONE, Reconciler, Result
from tinystack.network.agent_settings import AgentSettings
from tinystack.network.dataplane.firewall import filtered, instance_port
from tinystack.network.drivers.base import Doc, Keep, NetworkDriver, NotReady, Raced

log = logging.getLogger(__name__)

TYPES = ("network", "dhcp", "port", "router")
FIREWALL, GC = "firewall", "gc"
HEARTBEAT_INTERVAL = 10.0
NOT_READY_RETRY = 0.5
RACE_LIMIT = 20  # consecutive races of one key (ten seconds of NOT_READY_RETRY) before it is reported as a failure
ERROR_RETRY = 5.0
FIREWALL_DEBOUNCE = 0.01  # seconds a change waits for the rest of its burst, so that one apply covers them all


class NetworkAgent:
    def __init__(self, bus: Bus, settings: AgentSettings, driver: NetworkDriver) -> None:
        self.bus = bus
        self.settings = settings
        self.host = settings.host
        self.driver = driver
        self.docs: dict[str, dict[str, Doc]] = {t: {} for t in TYPES}
        self.generations: dict[str, int] = {}
        self.reported = SentReports()
        self.synced = False  # garbage collection waits for the controller's first complete list
        self.reconciler = Reconciler("network-agent", self._reconcile, self._keys,
                                     resync_interval=settings.resync_interval)
        self._races: dict[str, int] = {}  # consecutive Raced outcomes per key
        self._fw_wanted = 0  # bumped by every change that alters the ruleset
        self._fw_applied = -1
        self._fw_lock = asyncio.Lock()
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def topic(self) -> str:
        return f"agent.network.{self.host}"

    async def start(self) -> None:
        await self.driver.setup()
        self.bus.subscribe(self.topic, self.handle)
        await self.reconciler.start()
        self._heartbeat = asyncio.create_task(self._beat(), name="network-agent-heartbeat")
        await self.bus.publish("resync.network", {"host": self.host})
        log.info("network agent for %s started (%s driver)", self.host, type(self.driver).__name__)

    async def stop(self, cleanup: bool) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await self.reconciler.stop()
        if cleanup:
            await self.driver.teardown()
        log.info("network agent for %s stopped (cleanup=%s)", self.host, cleanup)

    async def _beat(self) -> None:
        while True:
            try:
                await self.bus.publish("heartbeat", {"agent": "network", "host": self.host, "time": time.time(),
                                                     "binary": "tinystack-network-agent"})
            except Exception:
                # One beat lost to a broker hiccup must not end the beating: the agent would look dead for good.
                log.exception("network heartbeat failed")
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    # -- messages ---------------------------------------------------------------------------------

    async def handle(self, message: dict[str, Any]) -> None:
        """One bus message; idempotent, since delivery is at least once."""
        op = message.get("op")
        if op == "sync":
            self._sync(message)
            return
        kind, rid = message.get("type"), message.get("id")
        if kind not in TYPES or not isinstance(rid, str):
            log.warning("network agent: ignoring malformed message %r", message)
            return
        key = f"{kind}:{rid}"
        generation = int(message.get("generation") or 0)
        if generation < self.generations.get(key, -1):
            return  # an older message delivered late: the newer desired state stands
        self.generations[key] = generation
        if op == "put" and isinstance(message.get("spec"), dict):
            self.docs[kind][rid] = message["spec"]
        elif op == "delete":
            self.docs[kind].pop(rid, None)
        else:
            log.warning("network agent: ignoring message with op %r", op)
            return
        if kind in ("port", "network"):
            self._fw_wanted += 1
        self.reconciler.enqueue(key)

    def _sync(self, message: dict[str, Any]) -> None:
        ids: dict[str, list[str]] = message.get("ids") or {}
        for kind in message.get("types") or ():
            if kind not in TYPES:
                continue
            keep = set(ids.get(kind) or ())
            for rid in [r for r in self.docs[kind] if r not in keep]:
                del self.docs[kind][rid]
                self.reconciler.enqueue(f"{kind}:{rid}")
        self.synced = True
        self._fw_wanted += 1
        self.reconciler.enqueue(FIREWALL)
        self.reconciler.enqueue(GC)

    async def _keys(self) -> list[str]:
        self.reported.refresh_due()
        keys = [f"{kind}:{rid}" for kind in TYPES for rid in self.docs[kind]]
        keys.append(FIREWALL)
        if self.synced:
            keys.append(GC)
        return keys

    # -- reconcile --------------------------------------------------------------------------------

    async def _reconcile(self, key: str) -> Result:
        if key == FIREWALL:
            await self._firewall(check=True)
            return DONE
        if key == GC:
            try:
                removed = await self.driver.collect_garbage(self.keep())
            except NotReady as exc:  # a device it meant to remove went meanwhile: the next pass sees the rest
                log.debug("network agent: garbage collection raced: %s", exc)
                return Result(requeue_after=NOT_READY_RETRY)
            if removed:
                log.info("network agent: removed what nothing desires: %s", ", ".join(removed))
            return DONE
        kind, _, rid = key.partition(":")
        doc = self.docs[kind].get(rid)
        try:
            if doc is None:
                await self._delete(kind, rid)
                self._races.pop(key, None)
                self.reported.pop(key, None)
                return DONE
            await getattr(self, f"_ensure_{kind}")(doc)
        except NotReady as exc:
            races = self._races[key] = self._races.get(key, 0) + 1 if isinstance(exc, Raced) else 0
            if races < RACE_LIMIT:
                log.debug("network agent: %s not ready: %s", key, exc)
                return Result(requeue_after=NOT_READY_RETRY)
            # The same race every time for seconds is no race: something keeps the host from converging.
            self._races.pop(key, None)
            return await self._failed(kind, rid, doc, exc)
        except Exception as exc:
            self._races.pop(key, None)
            return await self._failed(kind, rid, doc, exc)
        self._races.pop(key, None)
        status: dict[str, Any] = {"status": "ACTIVE"}
        if kind == "router":
            # The floating IPs this document carried: a newer one, committed after it, is not in force yet.
            status["floating_ips"] = sorted(str(f["id"]) for f in doc.get("floating_ips") or [])
        await self._report(kind, rid, status)
        return DONE

    async def _failed(self, kind: str, rid: str, doc: Doc | None, exc: Exception) -> Result:
        log.error("network agent: %s:%s failed", kind, rid, exc_info=exc)
        if doc is not None:
            await self._report(kind, rid, {"status": "ERROR", "reason": str(exc)[:500]})
        return Result(requeue_after=ERROR_RETRY)

    async def _delete(self, kind: str, rid: str) -> None:
        if kind == "network":
            await self.driver.delete_network(rid)
        elif kind == "dhcp":
            await self.driver.delete_dhcp(rid)
        elif kind == "router":
            await self.driver.delete_router(rid)
        elif kind == "port":
            await self.driver.delete_port(rid)
            await self._firewall()

    def _network(self, network_id: str) -> Doc:
        network = self.docs["network"].get(network_id)
        if network is None:
            raise NotReady(f"network {network_id} has not arrived")
        return network

    async def _ensure_network(self, doc: Doc) -> None:
        await self.driver.ensure_network(doc)

    async def _ensure_dhcp(self, doc: Doc) -> None:
        await self.driver.ensure_dhcp(doc, self._network(doc["network_id"]))

    async def _ensure_router(self, doc: Doc) -> None:
        await self.driver.ensure_router(doc, self.docs["network"])

    async def _ensure_port(self, doc: Doc) -> None:
        if not instance_port(doc):
            # DHCP and router ports are wired by their dhcp/router documents; report once they are.
            if not await self.driver.port_wired(doc):
                raise NotReady(f"device of port {doc['id']} is not wired yet")
            return
        await self.driver.ensure_port(doc, self._network(doc["network_id"]))
        if filtered(doc):
            await self._firewall()

    async def _firewall(self, check: bool = False) -> None:
        """Apply the ruleset if any change came since the last apply (or, on ``check``, if it was tampered with).

        Concurrent callers share one apply: whoever waits behind the lock finds its change already in force.
        A change that finds no apply running waits a few milliseconds first, for the rest of its burst (a
        security-group change arrives as one port document per port).
        """
        wanted = self._fw_wanted
        if self._fw_applied < wanted and not self._fw_lock.locked():
            await asyncio.sleep(FIREWALL_DEBOUNCE)
        async with self._fw_lock:
            if self._fw_applied >= wanted and not (check and not await self.driver.firewall_intact()):
                return
            generation = self._fw_wanted
            ports = [p for p in self.docs["port"].values() if filtered(p)]
            await self.driver.apply_firewall(ports, list(self.docs["network"]))
            self._fw_applied = generation

    def keep(self) -> Keep:
        keep = Keep(networks=set(self.docs["network"]), routers=set(self.docs["router"]))
        keep.ports = {p["id"] for p in self.docs["port"].values() if instance_port(p)}
        for dhcp in self.docs["dhcp"].values():
            keep.dhcp.add(dhcp["network_id"])
            keep.dhcp_ports.add(dhcp["port"]["id"])
        for router in self.docs["router"].values():
            keep.router_ports |= {i["port_id"] for i in router.get("interfaces") or ()}
            if router.get("gateway"):
                keep.router_ports.add(router["gateway"]["port_id"])
        return keep

    async def _report(self, kind: str, rid: str, status: dict[str, Any]) -> None:
        key = f"{kind}:{rid}"
        generation = self.generations.get(key, 0)
        # Unchanged since the last report: the periodic resync stays quiet on the bus.
        await publish_changed(self.bus, self.reported, key, (generation, repr(sorted(status.items()))),
                              "status.network", {"type": kind, "id": rid, "host": self.host,
                                                 "observed_generation": generation, "status": status})

    async def wait_idle(self) -> None:
        """Tests and benchmarks: wait until every queued key has been reconciled."""
        await self.reconciler.wait_idle()
