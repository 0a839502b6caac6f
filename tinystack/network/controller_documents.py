"""The network controller's documents: what a set of changes recomputes, the diff against what went out (a
generation bump by compare-and-swap when content or hosts changed), a host's full set, and sending a batch."""

from __future__ import annotations

import asyncio
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
from tinystack.core.db import greatest
from tinystack.network import docs
from tinystack.network.models import (
    Agent,
    DocGenerationFloor,
    Network,
    Port,
    PortSecurityGroup,
    PublishedDoc,
    Router,
    SecurityGroupRule,
)

if TYPE_CHECKING:
    from tinystack.network.service import NetworkService

# The controller's own logger, so its lines keep the name operators filter on.
log = logging.getLogger("tinystack.network.controller")
TYPES = ("network", "dhcp", "port", "router")
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


def floor_of(s: Session) -> int:
    """The highest generation a removed document reached (``DocGenerationFloor``)."""
    return int(s.scalar(select(DocGenerationFloor.generation).where(DocGenerationFloor.id == 1)) or 0)


def raise_floor(s: Session, generation: int) -> None:
    """A document's row is removed at ``generation``: no document starts at or below it again."""
    stmt = (update(DocGenerationFloor).where(DocGenerationFloor.id == 1)
            .values(generation=greatest(DocGenerationFloor.generation, generation)))
    if not s.execute(stmt).rowcount:  # type: ignore[attr-defined]
        s.add(DocGenerationFloor(id=1, generation=generation))  # a database the migration did not seed


class Documents:
    """Mixin of ``Controller``, which sets these attributes."""

    svc: NetworkService
    bus: Bus
    metadata_socket: str
    _host: str | None  # the network host: DHCP and router documents go there
    _reconcile_lock: threading.RLock
    _resync_lock: threading.Lock

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
        with self.svc.session() as s:
            keys = {("network", i) for i in s.scalars(select(Network.id))}
            keys |= {("port", i) for i in s.scalars(select(Port.id).where(Port.host_id != ""))}
            keys |= {("router", i) for i in s.scalars(select(Router.id))}
            keys |= {change_key(k, i) for k, i in s.execute(select(PublishedDoc.type, PublishedDoc.id))}
        return keys

    def known_hosts(self) -> list[str]:
        """Every host a document goes to, and every network agent's."""
        with self.svc.session() as s:
            hosts = {h for hs in s.scalars(select(PublishedDoc.hosts)) for h in hs or ()}
            hosts |= set(s.scalars(select(Agent.host).where(Agent.agent_type == "L3 agent")))
        return sorted(h for h in hosts if h)

    def mark(self, marks: list[Mark]) -> None:
        with self.svc.session() as s:
            for m in marks:
                if m.gone:
                    removed = s.execute(delete(PublishedDoc).where(
                        PublishedDoc.type == m.type, PublishedDoc.id == m.id, PublishedDoc.generation == m.generation,
                        PublishedDoc.digest == GONE).execution_options(synchronize_session=False))
                    if removed.rowcount:  # type: ignore[attr-defined]
                        raise_floor(s, m.generation)
                else:
                    desired.mark_published(s, PublishedDoc, (m.type, m.id), m.generation, {"published_hosts": m.hosts})

    def port_events(self, keys: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """``network-changed`` for the devices of ports whose floating IPs changed: what Neutron tells Nova
        through os-server-external-events, so that a server's ``addresses`` show its floating IPs."""
        port_ids = sorted(ident for kind, ident in keys if kind == "fip_port")
        if not port_ids:
            return []
        with self.svc.session() as s:
            rows = s.execute(select(Port.id, Port.device_id).where(Port.id.in_(port_ids))).all()
        return [{"name": "network-changed", "server_uuid": device_id, "tag": port_id}
                for port_id, device_id in rows if device_id]

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
        floor: int | None = None
        with self.svc.session() as s:
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
                    # Above every generation a removed document reached: this id may have had one before.
                    floor = floor_of(s) if floor is None else floor
                    row = PublishedDoc(type=kind, id=ident, generation=floor + 1, digest=d, hosts=hosts,
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
            with self.svc.session() as s:
                ids = docs.ids_on_host(s, host, self._host)
            batch = self.reconcile({change_key(t, i) for t, idents in ids.items() for i in idents})
            # The host's own messages come below, complete and current.
            batch.messages = [m for m in batch.messages if m[0] != host] + self.host_sync(host, ids)
            return batch

    def host_sync(self, host: str, ids: dict[str, list[str]] | None = None) -> list[Message]:
        """A put for every document of ``host`` at its current generation, then the ``sync`` listing them."""
        messages: list[Message] = []
        with self.svc.session() as s:
            if ids is None:
                ids = docs.ids_on_host(s, host, self._host)
            want = {t: set(idents) for t, idents in ids.items()}
            for kind, ident, doc in self.compute(s, want):
                if doc is None or host not in doc.hosts:
                    continue
                row = s.get(PublishedDoc, (kind, ident))
                if row is None:
                    # Committed after this pass's reconcile: its first put (with its generation) is on its way,
                    # and the agent cannot hold it yet, so leaving it out of the list removes nothing.
                    continue
                messages.append((host, {"op": "put", "type": kind, "id": ident, "generation": row.generation,
                                        "spec": doc.spec}))
        sync_ids = {t: sorted(m["id"] for _, m in messages if m["type"] == t) for t in TYPES}
        messages.append((host, {"op": "sync", "types": list(TYPES), "ids": sync_ids}))
        return messages
