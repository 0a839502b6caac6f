"""The conductor's publishing: the resolved ``instance`` document, the messages a generation asks of the hosts,
and the level-triggered publisher's work list and full host syncs (docs/contracts.md, "Desired state")."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from tinystack.compute import states
from tinystack.compute.models import ComputeNode, Instance
from tinystack.core import desired

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

# Task states during which the conductor itself is working (scheduling, ports); no agent is involved yet.
BUILD_TASKS = ("scheduling", "block_device_mapping", "networking")
# Task states of a cold move (or its revert) on its way: the source still has to hand the guest's files over.
MOVE_TASKS = ("resize_prep", "resize_reverting")


class Publishing:
    """Mixin of ``Conductor``, which sets these attributes."""

    svc: ComputeService
    publisher: desired.Publisher
    # Instances a build (or unshelve) in this process is still working on: they publish when it is done.
    _building: set[str]

    def _load(self, iid: str) -> Instance | None:
        with self.svc.session() as s:
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
            "reboot": d.get("reboot") or {"seq": 0, "hard": False}, "snapshot": d.get("snapshot"),
            "rebuild": d.get("rebuild") or {"seq": 0},
            "migration": d.get("migration"),
            "config_drive": self.config_drive(inst) if inst.config_drive else None,
            "admin_pass": inst.admin_pass, "console_log_max_bytes": self.svc.settings.console_log_max_bytes,
            "volumes": self.svc.volumes.doc(inst),
        }
        return spec

    def config_drive(self, inst: Instance) -> dict[str, Any]:
        from tinystack.compute.instancemeta import instance_dict

        metadata = self.svc.service("metadata")
        return {"files": metadata.config_drive_files(instance_dict(self.svc, inst, (inst.flavor or {}).get("name")))}

    def publish_soon(self, iid: str) -> None:
        """The row is committed: publish it now (a hint; the publisher's work list has it anyway)."""
        self.publisher.enqueue(iid)

    async def publish(self, iid: str) -> None:
        """Publish the instance's desired state now, for callers that send more messages after it."""
        await self.publisher.publish_now(iid)

    def messages(self, inst: Instance) -> list[tuple[str, dict[str, Any]]]:
        """What the instance's generation asks of the hosts: a put (or a delete) for its host, and for a cold move
        still on its way, the source's delete that hands the files to the destination. Nothing while the conductor
        itself still works on it (a build before its ports and volumes are ready)."""
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
        return out

    async def _publish_key(self, iid: str) -> None:
        with self.svc.session() as s:
            inst = s.get(Instance, iid)
            if inst is None:
                return
            generation, messages = inst.generation, self.messages(inst)
        if not messages:
            return
        for topic, msg in messages:
            await self.svc.bus.publish(topic, msg)
        with self.svc.session() as s:
            desired.mark_published(s, Instance, iid, generation)

    async def _pending(self) -> list[str]:
        """The work list: live instances with a host whose generation has not gone out."""
        with self.svc.session() as s:
            ids = list(s.scalars(select(Instance.id).where(
                Instance.deleted.is_(False), Instance.host.is_not(None), desired.ahead(Instance),
                or_(Instance.task_state.is_(None), Instance.task_state.not_in(BUILD_TASKS)))))
        # A build or unshelve in this process publishes when its ports are bound, not before.
        return [i for i in ids if i not in self._building]

    def host_messages(self, host: str) -> list[tuple[str, dict[str, Any]]]:
        """Everything ``host`` should hold, then the complete list of it (``sync``): what an agent gets when it
        starts, and every host each sync interval."""
        topic = f"agent.compute.{host}"
        out: list[tuple[str, dict[str, Any]]] = []
        with self.svc.session() as s:
            rows = list(s.scalars(select(Instance).where(Instance.host == host, Instance.deleted.is_(False))))
            # Guests live-migrating to this host: its waiting QEMU must not look like garbage to it.
            incoming = [i for i in s.scalars(select(Instance).where(Instance.deleted.is_(False),
                                                                    Instance.task_state == "migrating"))
                        if (i.doc.get("migration") or {}).get("dest_host") == host]
            for inst in rows:
                if inst.id not in self._building:
                    out += [m for m in self.messages(inst) if m[0] == topic]
            for inst in incoming:
                out.append((topic, {"op": "put", "type": "instance", "id": inst.id, "generation": inst.generation,
                                    "spec": self.doc(inst)}))
            keep = [i.id for i in rows] + [i.id for i in incoming]
        out.append((topic, {"op": "sync", "types": ["instance"], "ids": {"instance": keep}}))
        return out

    async def _sync_hosts(self) -> None:
        """The periodic full sync: every host that has a compute node or an instance gets all it should hold."""
        with self.svc.session() as s:
            hosts = set(s.scalars(select(ComputeNode.host))) | set(s.scalars(
                select(Instance.host).where(Instance.deleted.is_(False), Instance.host.is_not(None)).distinct()))
        for host in sorted(h for h in hosts if h):
            for topic, msg in await asyncio.to_thread(self.host_messages, host):
                await self.svc.bus.publish(topic, msg)

    async def on_resync(self, msg: dict[str, Any]) -> None:
        """An agent started: send it every instance it should hold, then the complete set."""
        host = msg.get("host")
        if not isinstance(host, str):
            return
        for topic, message in self.host_messages(host):
            await self.svc.bus.publish(topic, message)
