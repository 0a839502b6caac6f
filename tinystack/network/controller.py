"""The network controller: after every change it recomputes the affected documents, bumps a document's
generation (compare-and-swap) when its content or hosts changed, and publishes puts and deletes on
``agent.network.<host>``. It also answers ``resync.network``, applies ``status.network`` reports and records
``heartbeat``s.

Publishing is level-triggered (tinystack/core/desired.py): a change notification is only a hint. The database
keeps what each document's generation is and what of it went out (``published_generation``,
``published_hosts``); every ``[desired] sync_interval`` seconds, and at start, the controller recomputes every
document, publishes the ones that are ahead and sends every host its full set. A crash between a commit and its
publish costs a host one interval."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinystack.core import desired
from tinystack.core.bus import Bus
from tinystack.network import admin, docs
from tinystack.network.models import Agent, FloatingIP, Network, Port, PortSecurityGroup, PublishedDoc, Router, SecurityGroupRule

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

log = logging.getLogger(__name__)
TYPES = ("network", "dhcp", "port", "router")
STATUSES = ("ACTIVE", "DOWN", "ERROR", "BUILD")
Message = tuple[str, dict[str, Any]]
# The digest of a document whose resource is gone: its row stays until the deletes went out.
GONE = "gone"


@dataclass
class Mark:
    """A document's generation that went out to ``hosts`` once its messages are published."""

    type: str
    id: str
    generation: int
    hosts: list[str]
    gone: bool


@dataclass
class Batch:
    """The messages for the documents that are ahead of what was published, and the marks to record after."""

    messages: list[Message] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)


def change_key(kind: str, ident: str) -> tuple[str, str]:
    """The change notification that recomputes a document (a ``dhcp`` document comes with its network)."""
    return ("network" if kind == "dhcp" else kind, ident)


# Where the controller announces changes that other services act on (compute refreshes a server's addresses).
EVENTS_TOPIC = "events.network"


def topic(host: str) -> str:
    return f"agent.network.{host}"


def digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


class Controller:
    def __init__(self, svc: NetworkService, bus: Bus, metadata_socket: str) -> None:
        self.svc = svc
        self.bus = bus
        self.metadata_socket = metadata_socket
        # Change notifications not yet looked at: a hint (a crash loses it; the next full pass does not).
        self._hints: Changes = set()
        self._full = True  # the full pass: every document recomputed, every host sent its set
        self.sync_interval = svc.config.sync_interval
        self._lock = threading.Lock()
        self._reconcile_lock = threading.RLock()  # resync calls reconcile while holding its own lock
        self._resync_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._host: str | None = None
        svc.listeners.append(self.changed)
        svc.network_host = lambda: self._host

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._host = await asyncio.to_thread(self._latest_host)
        self.bus.subscribe("resync.network", self.on_resync, group="network")
        self.bus.subscribe("status.network", self.on_status, group="network")
        self.bus.subscribe("heartbeat", self.on_heartbeat)  # fan-out: each process follows the network host
        self._task = self._loop.create_task(self._run())
        self._timer = self._loop.create_task(self._every_interval())
        with self._lock:
            self._full = True
        self._kick()

    async def stop(self) -> None:
        for task in (self._timer, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._timer = None

    def _latest_host(self) -> str | None:
        """The network host stays where it is while its agent lives: with several network agents (multi-node),
        following whichever sent the latest heartbeat would move DHCP and routers every few seconds."""
        if self._host is not None:
            with self.svc.read() as s:
                row = s.scalar(select(Agent).where(Agent.agent_type == "L3 agent", Agent.host == self._host,
                                                   Agent.admin_state_up.is_(True)))
            if row is not None and admin.alive(self.svc, row):
                return self._host
        return admin.network_host(self.svc)

    @property
    def network_host(self) -> str | None:
        return self._host

    # --- change notifications (from any thread) -----------------------------------------------

    def changed(self, changes: Changes) -> None:
        with self._lock:
            self._hints |= changes
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._kick)

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def settled(self, timeout: float = 30) -> None:
        """Wait until every change notified so far has been published (tests and benchmarks)."""
        await asyncio.sleep(0)
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            with self._lock:
                self._full = True
            self._kick()

    async def _run(self) -> None:
        """One task publishes, so a host's ``sync`` never overtakes a put computed after it in this process."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._lock:
                keys, self._hints = self._hints, set()
                full, self._full = self._full, False
            if not keys and not full:
                self._idle.set()
                continue
            try:
                if full:
                    await self._full_pass()
                if keys:
                    await self._send(await asyncio.to_thread(self.reconcile, keys))
                    for event in await asyncio.to_thread(self.port_events, keys):
                        await self.bus.publish(EVENTS_TOPIC, event)
            except Exception:
                log.exception("network controller: publishing failed; retrying")
                with self._lock:
                    self._hints |= keys
                    self._full |= full
                await asyncio.sleep(0.5)
                self._wake.set()
                continue
            with self._lock:
                if not self._hints and not self._full:
                    self._idle.set()

    async def _full_pass(self) -> None:
        """Every document recomputed (what a lost hint changed is found here), those ahead of what went out
        published, then every host sent its full set."""
        if self._host is None:
            # No live network host known yet (a restart, before the agents' heartbeats): recomputed now, DHCP and
            # router documents would lose their host and the old one would be told to remove them.
            return
        await self._send(await asyncio.to_thread(self.reconcile, await asyncio.to_thread(self.all_keys)))
        hosts = await asyncio.to_thread(self.known_hosts)
        for host in hosts:
            await self._send(Batch(messages=await asyncio.to_thread(self.host_sync, host)))

    async def _send(self, batch: Batch) -> None:
        """Publish, then record what went out; a crash in between leaves the rows ahead for the next pass."""
        if not batch.messages and not batch.marks:
            return
        try:
            desired.fault_point("network", ",".join(f"{m.type}:{m.id}" for m in batch.marks) or "sync")
        except desired.SimulatedCrash:
            log.warning("network controller: simulated crash before publishing; the next pass publishes it")
            return
        for host, message in batch.messages:
            await self.bus.publish(topic(host), message)
        if batch.marks:
            await asyncio.to_thread(self.mark, batch.marks)

    def all_keys(self) -> set[tuple[str, str]]:
        with self.svc.read() as s:
            keys = {("network", i) for i in s.scalars(select(Network.id))}
            keys |= {("port", i) for i in s.scalars(select(Port.id).where(Port.host_id != ""))}
            keys |= {("router", i) for i in s.scalars(select(Router.id))}
            keys |= {change_key(k, i) for k, i in s.execute(select(PublishedDoc.type, PublishedDoc.id))}
        return keys

    def known_hosts(self) -> list[str]:
        """Every host a document goes to, and every network agent's."""
        with self.svc.read() as s:
            hosts = {h for hs in s.scalars(select(PublishedDoc.hosts)) for h in hs or ()}
            hosts |= set(s.scalars(select(Agent.host).where(Agent.agent_type == "L3 agent")))
        return sorted(h for h in hosts if h)

    def mark(self, marks: list[Mark]) -> None:
        with self.svc.db.session() as s:
            for m in marks:
                if m.gone:
                    s.execute(delete(PublishedDoc).where(PublishedDoc.type == m.type, PublishedDoc.id == m.id,
                                                         PublishedDoc.generation == m.generation,
                                                         PublishedDoc.digest == GONE))
                else:
                    desired.mark_published(s, PublishedDoc, (m.type, m.id), m.generation, {"published_hosts": m.hosts})

    def port_events(self, keys: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """``network-changed`` for the devices of ports whose floating IPs changed: what Neutron tells Nova
        through os-server-external-events, so that a server's ``addresses`` show its floating IPs."""
        port_ids = sorted(ident for kind, ident in keys if kind == "fip_port")
        if not port_ids:
            return []
        with self.svc.read() as s:
            rows = s.execute(select(Port.id, Port.device_id).where(Port.id.in_(port_ids))).all()
        return [{"name": "network-changed", "server_uuid": device_id, "tag": port_id}
                for port_id, device_id in rows if device_id]

    # --- computing and diffing documents ------------------------------------------------------

    def expand(self, s: Session, keys: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
        want: dict[str, set[str]] = {t: set() for t in TYPES}
        groups, members = set(), set()
        for kind, ident in keys:
            if kind == "network":
                want["network"].add(ident)
                want["dhcp"].add(ident)
            elif kind in ("port", "router"):
                want[kind].add(ident)
            elif kind == "sg":
                groups.add(ident)
            elif kind == "sgmembers":
                members.add(ident)
        if members:
            groups |= set(s.scalars(select(SecurityGroupRule.security_group_id)
                                    .where(SecurityGroupRule.remote_group_id.in_(members))))
        if groups:
            want["port"] |= set(s.scalars(select(PortSecurityGroup.port_id)
                                          .where(PortSecurityGroup.security_group_id.in_(groups))))
        return want

    def compute(self, s: Session, want: dict[str, set[str]]) -> list[tuple[str, str, docs.Doc | None]]:
        host = self._host
        out: list[tuple[str, str, docs.Doc | None]] = []
        for kind, found in (("network", docs.network_docs(s, want["network"], host)),
                            ("dhcp", docs.dhcp_docs(s, want["dhcp"], host, self.svc.settings.dns_domain,
                                                    self.metadata_socket)),
                            ("port", docs.port_docs(s, want["port"])),
                            ("router", docs.router_docs(s, want["router"], host))):
            out += [(kind, ident, doc) for ident, doc in found.items()]
        return out

    def reconcile(self, keys: Iterable[tuple[str, str]]) -> Batch:
        """The messages that bring every host in line with the documents ``keys`` affect."""
        keys = list(keys)
        # Runs in worker threads (publishing and resync at once): one at a time in this process, and a retry
        # when another API process inserted the same row first or moved a generation (compare-and-swap).
        with self._reconcile_lock:
            for attempt in range(5):
                try:
                    return self._reconcile(keys)
                except (IntegrityError, desired.Lost):
                    if attempt == 4:
                        raise
        raise AssertionError("unreachable")

    def _reconcile(self, keys: Iterable[tuple[str, str]]) -> Batch:
        batch = Batch()
        with self.svc.db.session() as s:
            computed = self.compute(s, self.expand(s, keys))
            published: dict[tuple[str, str], PublishedDoc] = {}
            for kind in TYPES:
                ids = [i for k, i, _ in computed if k == kind]
                for chunk in (ids[n:n + 500] for n in range(0, len(ids), 500)):
                    for found in s.scalars(select(PublishedDoc).where(PublishedDoc.type == kind,
                                                                      PublishedDoc.id.in_(chunk))):
                        published[(kind, found.id)] = found
            for kind, ident, doc in computed:
                row: PublishedDoc | None = published.get((kind, ident))
                hosts = sorted(doc.hosts) if doc is not None else []
                d = digest(doc.spec) if doc is not None and hosts else GONE if doc is None else ""
                if row is None:
                    if not hosts:
                        continue
                    row = PublishedDoc(type=kind, id=ident, generation=1, digest=d, hosts=hosts,
                                       published_generation=0, published_hosts=[])
                    s.add(row)
                elif row.digest != d or sorted(row.hosts) != hosts:
                    desired.bump_or_lose(s, PublishedDoc, (kind, ident), row.generation, {"digest": d, "hosts": hosts})
                if row.generation <= row.published_generation:
                    continue
                gen = row.generation
                batch.messages += [(h, {"op": "put", "type": kind, "id": ident, "generation": gen, "spec": doc.spec})
                                   for h in hosts if doc is not None]
                batch.messages += [(h, {"op": "delete", "type": kind, "id": ident, "generation": gen})
                                   for h in sorted(set(row.published_hosts or ()) - set(hosts))]
                batch.marks.append(Mark(kind, ident, gen, hosts, d == GONE))
        return batch

    def resync(self, host: str) -> Batch:
        """What an agent that starts gets: whatever is ahead for other hosts, then a put for every resource of
        ``host`` (current generations) and the sync message listing them."""
        with self._resync_lock:
            with self.svc.db.session() as s:
                ids = docs.ids_on_host(s, host, self._host)
            batch = self.reconcile({change_key(t, i) for t, idents in ids.items() for i in idents})
            # The host's own messages come below, complete and current.
            batch.messages = [m for m in batch.messages if m[0] != host] + self.host_sync(host, ids)
            return batch

    def host_sync(self, host: str, ids: dict[str, list[str]] | None = None) -> list[Message]:
        """A put for every document of ``host`` at its current generation, then the ``sync`` listing them."""
        messages: list[Message] = []
        with self.svc.db.session() as s:
            if ids is None:
                ids = docs.ids_on_host(s, host, self._host)
            want = {t: set(idents) for t, idents in ids.items()}
            for kind, ident, doc in self.compute(s, want):
                if doc is None or host not in doc.hosts:
                    continue
                row = s.get(PublishedDoc, (kind, ident))
                generation = row.generation if row is not None else 0
                messages.append((host, {"op": "put", "type": kind, "id": ident, "generation": generation,
                                        "spec": doc.spec}))
        sync_ids = {t: sorted(m["id"] for _, m in messages if m["type"] == t) for t in TYPES}
        messages.append((host, {"op": "sync", "types": list(TYPES), "ids": sync_ids}))
        return messages

    # --- bus handlers -------------------------------------------------------------------------

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

        await asyncio.to_thread(self.svc.write, rebind)

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

        self.svc.write(do)
