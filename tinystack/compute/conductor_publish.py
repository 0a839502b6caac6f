"""The conductor's publishing: the resolved ``instance`` document, the messages a generation asks of the hosts,
and the level-triggered publisher's work list and full host syncs (docs/contracts.md, "Desired state").

What a row asks beyond its own host's put follows from the row too, so a crash between a commit and its messages
loses none of them: the destination's put during a live migration, the old host's delete after a shelve offload
(``offloaded_from``), and the ports' binding to the server's host (``ports_host``, where they are bound now)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from tinystack.compute import states
from tinystack.compute.livemigration import BIND, LiveMigrations, destination_put
from tinystack.compute.models import ComputeNode, Instance, utcnow
from tinystack.compute.netbind import NetBinder
from tinystack.compute.volumes import Volumes
from tinystack.core import desired
from tinystack.core.bus import Bus

# Task states during which the conductor itself is working (scheduling, ports); no agent is involved yet.
BUILD_TASKS = ("scheduling", "block_device_mapping", "networking")
# Task states of a cold move (or its revert) on its way: the source still has to hand the guest's files over.
MOVE_TASKS = ("resize_prep", "resize_reverting")
# Seconds a row may wait for its host's report on its generation before the periodic sync asks for it again.
REPORT_AFTER = 120


def ports_moved(inst: Instance) -> bool:
    """Whether the server's ports are still bound to a host it has left (a move committed, the rebind not done)."""
    bound = inst.doc.get("ports_host")
    return bool(inst.ports and inst.host and bound and bound != inst.host)


class Publishing:
    """Mixin of ``Conductor``, which sets these attributes."""

    session: Callable[[], AbstractContextManager[Session]]
    bus: Bus
    net: NetBinder
    live: LiveMigrations
    console_log_max_bytes: int
    config_drive_files: Callable[[Instance], dict[str, Any]]
    publisher: desired.Publisher
    # Instances a build (or unshelve) in this process is still working on: they publish when it is done.
    _building: set[str]

    def load(self, iid: str) -> Instance | None:
        with self.session() as s:
            return s.get(Instance, iid)

    def doc(self, inst: Instance) -> dict[str, Any]:
        """The ``instance`` spec of docs/contracts.md, resolved: the agent never reads the database."""
        d = inst.doc
        f = inst.flavor
        image = d.get("image") or {}
        props = image.get("properties") or {}
        nics = [{"port_id": p["port_id"], "mac_address": p.get("mac_address"), "tap": f"tap{p['port_id'][:11]}",
                 "fixed_ips": p.get("fixed_ips", [])} for p in inst.ports]
        spec: dict[str, Any] = {
            "id": inst.id, "name": inst.name, "hostname": inst.hostname, "project_id": inst.project_id,
            "user_id": inst.user_id,
            "flavor": {"vcpus": f["vcpus"], "memory_mb": f["memory_mb"], "root_gb": f["root_gb"],
                       "ephemeral_gb": f.get("ephemeral_gb", 0), "swap_mb": f.get("swap", 0),
                       "extra_specs": f.get("extra_specs", {})},
            "image": {k: image.get(k) for k in ("id", "disk_format", "container_format", "size", "checksum",
                                                "properties")},
            "kernel_image_id": props.get("kernel_id"), "ramdisk_image_id": props.get("ramdisk_id"),
            "nics": nics, "power": d.get("power", "running"), "rescue": bool(d.get("rescue")),
            **({"rescue_image": {k: d["rescue_image"].get(k) for k in ("id", "disk_format", "container_format",
                                                                      "size", "checksum")}}
               if d.get("rescue") and d.get("rescue_image") else {}),
            "reboot": d.get("reboot") or {"seq": 0, "hard": False}, "snapshot": d.get("snapshot"),
            "rebuild": d.get("rebuild") or {"seq": 0},
            "migration": d.get("migration"),
            "config_drive": self.config_drive(inst) if inst.config_drive else None,
            "admin_pass": inst.admin_pass, "console_log_max_bytes": self.console_log_max_bytes,
            "volumes": Volumes.doc(inst),
        }
        return spec

    def config_drive(self, inst: Instance) -> dict[str, Any]:
        return {"files": self.config_drive_files(inst)}

    def publish_soon(self, iid: str) -> None:
        """The row is committed: publish it now (a hint; the publisher's work list has it anyway)."""
        self.publisher.enqueue(iid)

    async def publish(self, iid: str) -> None:
        """Publish the instance's desired state now, for callers that send more messages after it."""
        await self.publisher.publish_now(iid)

    def messages(self, inst: Instance) -> list[tuple[str, dict[str, Any]]]:
        """What the instance's generation asks of the hosts: a put (or a delete) for its host, and for a cold move
        still on its way, the source's delete that hands the files to the destination; during a live migration, the
        destination's put until it listens; after a shelve offload, the old host's delete. Nothing while the
        conductor itself still works on it (a build before its ports and volumes are ready)."""
        offloaded = inst.doc.get("offloaded_from")
        if not inst.deleted and not inst.host and offloaded and inst.vm_state == states.SHELVED_OFFLOADED:
            return [(f"agent.compute.{offloaded}", {"op": "delete", "type": "instance", "id": inst.id,
                                                    "generation": inst.generation})]
        if inst.deleted or not inst.host or (inst.task_state in BUILD_TASKS and inst.vm_state == states.BUILDING):
            return []
        topic = f"agent.compute.{inst.host}"
        if inst.task_state == "deleting":
            return [(topic, {"op": "delete", "type": "instance", "id": inst.id, "generation": inst.generation})]
        out: list[tuple[str, dict[str, Any]]] = [
            (topic, {"op": "put", "type": "instance", "id": inst.id, "generation": inst.generation,
                     "spec": self.doc(inst)})]
        mig = inst.doc.get("migration") or {}
        src, dest = mig.get("source_host"), mig.get("dest_host")
        if (mig.get("kind") == "cold" and src and dest == inst.host and src != dest
                and inst.task_state in MOVE_TASKS and inst.observed_generation < inst.generation):
            out.append((f"agent.compute.{src}", {"op": "delete", "type": "instance", "id": inst.id,
                                                 "generation": inst.generation, "to_host": dest}))
        if destination_put(inst):
            out.append((f"agent.compute.{dest}", {"op": "put", "type": "instance", "id": inst.id,
                                                  "generation": inst.generation, "spec": self.doc(inst)}))
        return out

    async def _publish_key(self, iid: str) -> None:
        inst = self.load(iid)
        if inst is None:
            return
        if inst.task_state == "migrating":
            await self.live.prepare(inst)  # the first step of a live migration, when it is not done yet
        elif ports_moved(inst):
            await self.rebind_ports(inst)
        with self.session() as s:
            found = s.get(Instance, iid)
            if found is None:
                return
            generation, messages = found.generation, self.messages(found)
        if not messages and not (found.vm_state == states.SHELVED_OFFLOADED and not found.host):
            return  # a build or unshelve not ready yet: it stays in the work list
        for topic, msg in messages:
            await self.bus.publish(topic, msg)
        with self.session() as s:
            desired.mark_published(s, Instance, iid, generation)

    async def rebind_ports(self, inst: Instance) -> None:
        """Bind the server's ports to its host, so the network agent there plugs them, then note where they are
        by compare-and-swap: the generation the caller then publishes. When another writer moved the row first,
        nothing is noted, and publishing that generation binds them again (binding twice changes nothing)."""
        host = inst.host
        if not host:
            return
        await asyncio.to_thread(self.net.rebind, inst, host)
        with self.session() as s:
            row = s.get(Instance, inst.id)
            if row is not None and row.doc.get("ports_host") != host and row.host == host:
                desired.bump(s, Instance, row.id, row.generation, {"doc": {**row.doc, "ports_host": host}})

    async def _pending(self) -> list[str]:
        """The work list: live instances with a host (or just offloaded from one) whose generation has not gone out."""
        with self.session() as s:
            ids = list(s.scalars(select(Instance.id).where(
                Instance.deleted.is_(False), desired.ahead(Instance),
                or_(Instance.host.is_not(None),
                    and_(Instance.vm_state == states.SHELVED_OFFLOADED, Instance.task_state.is_(None))),
                or_(Instance.task_state.is_(None), Instance.task_state.not_in(BUILD_TASKS)))))
        # A build or unshelve in this process publishes when its ports are bound, not before.
        return [i for i in ids if i not in self._building]

    def host_messages(self, host: str) -> list[tuple[str, dict[str, Any]]]:
        """Everything ``host`` should hold, then the complete list of it (``sync``): what an agent gets when it
        starts, and every host each sync interval."""
        topic = f"agent.compute.{host}"
        out: list[tuple[str, dict[str, Any]]] = []
        stale = utcnow() - timedelta(seconds=REPORT_AFTER)
        with self.session() as s:
            rows = list(s.scalars(select(Instance).where(Instance.host == host, Instance.deleted.is_(False))))
            # Guests live-migrating to this host: its waiting QEMU must not look like garbage to it.
            incoming = [i for i in s.scalars(select(Instance).where(Instance.deleted.is_(False),
                                                                    Instance.task_state == "migrating"))
                        if (i.doc.get("migration") or {}).get("dest_host") == host
                        and (i.doc.get("migration") or {}).get("stage") != BIND]
            for inst in rows:
                if inst.id not in self._building:
                    # A generation the host has not confirmed for REPORT_AFTER asks for its status again: a report
                    # dropped on the way (a handler that failed twice) would otherwise never come back, and the
                    # server would wait in its task state for good (the agent says each status once). Not sooner:
                    # reports queued behind a loaded controller would each be asked for again, adding to the queue.
                    report = {"report": True} if (inst.observed_generation < inst.generation
                                                  and inst.updated_at < stale) else {}
                    out += [(t, {**m, **report} if m["op"] == "put" else m)
                            for t, m in self.messages(inst) if t == topic]
            for inst in incoming:
                out.append((topic, {"op": "put", "type": "instance", "id": inst.id, "generation": inst.generation,
                                    "spec": self.doc(inst)}))
            keep = [i.id for i in rows] + [i.id for i in incoming]
        out.append((topic, {"op": "sync", "types": ["instance"], "ids": {"instance": keep}}))
        return out

    async def _sync_hosts(self) -> None:
        """The periodic full sync: every host that has a compute node or an instance gets all it should hold."""
        with self.session() as s:
            hosts = set(s.scalars(select(ComputeNode.host))) | set(s.scalars(
                select(Instance.host).where(Instance.deleted.is_(False), Instance.host.is_not(None)).distinct()))
        for host in sorted(h for h in hosts if h):
            for topic, msg in await asyncio.to_thread(self.host_messages, host):
                await self.bus.publish(topic, msg)

    async def on_resync(self, msg: dict[str, Any]) -> None:
        """An agent started: send it every instance it should hold, then the complete set."""
        host = msg.get("host")
        if not isinstance(host, str):
            return
        for topic, message in self.host_messages(host):
            await self.bus.publish(topic, message)
