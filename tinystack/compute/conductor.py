"""The conductor: turns written desired state into work. It schedules and claims (placement), binds ports
(network), publishes ``instance`` docs to ``agent.compute.<host>`` and folds the agents' ``status.compute``
reports, ``node`` docs, heartbeats and resync requests back into the tables (docs/contracts.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from tinystack.compute import states
from tinystack.compute.bootvolumes import BuildAborted
from tinystack.compute.livemigration import LiveMigrations
from tinystack.compute.models import ComputeNode, Instance, utcnow
from tinystack.compute.netbind import NetBinder
from tinystack.compute.placing import NoValidHost, Placer
from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.core.lease import Lease, Singleton

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

log = logging.getLogger(__name__)

# Task states during which the conductor itself is working (scheduling, ports); no agent is involved yet.
BUILD_TASKS = ("scheduling", "block_device_mapping", "networking")
# Task states of a cold move (or its revert) on its way: the source still has to hand the guest's files over.
MOVE_TASKS = ("resize_prep", "resize_reverting")


def service_context(inst: Instance) -> RequestContext:
    """Acting for the instance's owner with admin rights (binding:host_id is admin-only in Neutron)."""
    return RequestContext(user_id=inst.user_id, project_id=inst.project_id, roles=("admin", "member", "reader"))


class Conductor:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self.placer = Placer(svc)
        self.net = NetBinder(svc)
        self.live = LiveMigrations(svc)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._building: set[str] = set()
        self._started = False
        # Level-triggered: the work list is the instances whose generation is ahead of what went out, plus a
        # full sync of every host each interval; ``publish_soon`` only hurries a key along.
        self.publisher = desired.Publisher("compute", self._publish_key, self._pending, self._sync_hosts,
                                           interval=svc.config.sync_interval)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        bus = self.svc.bus
        bus.subscribe("status.compute", self.on_status, group="compute")
        bus.subscribe("resync.compute", self.on_resync, group="compute")
        bus.subscribe("heartbeat", self.on_heartbeat, group="compute")  # recorded in the database
        bus.subscribe("events.network", self.on_network_event, group="compute")  # docs/contracts.md: network-changed
        self.svc.admin.heartbeat_self()
        self._spawn(self._housekeeping())
        # Builds interrupted by a restart of the API process: pick them up again.
        with self.svc.session() as s:
            pending = list(s.scalars(select(Instance.id).where(
                Instance.deleted.is_(False), Instance.vm_state == states.BUILDING,
                Instance.task_state.in_(BUILD_TASKS))).all())
        if pending:
            self.build(pending)
        await self.publisher.start()

    async def stop(self) -> None:
        await self.publisher.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        return self._spawn(coro)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def idle(self) -> None:
        """Wait for every build and publish started so far (tests, benchmarks)."""
        while True:
            await self.publisher.wait_idle()
            busy = [t for t in self._tasks if t.get_name() != "housekeeping"]
            if not busy:
                return
            await asyncio.gather(*busy, return_exceptions=True)

    async def _housekeeping(self) -> None:
        asyncio.current_task().set_name("housekeeping")  # type: ignore[union-attr]
        # Each API process reports its own conductor and scheduler; finishing deletes is the cloud's work, done
        # by the one process holding the lease (design §7).
        deletes = Singleton(Lease(self.svc.db, "compute.finish-deletes"), self._finish_deletes_on_down_hosts, 10,
                            first_after=10)
        self._spawn(deletes.run()).set_name("housekeeping")
        while True:
            await asyncio.sleep(10)
            try:
                self.svc.admin.heartbeat_self()
            except Exception:
                log.exception("compute housekeeping failed")

    # --- validation helpers the API calls -------------------------------------------------------

    def validate_networks(self, ctx: RequestContext, networks: Any) -> Any:
        return self.net.validate(ctx, networks)

    def validate_security_groups(self, ctx: RequestContext, names: list[str], networks: Any) -> None:
        self.net.validate_security_groups(ctx, names, networks)

    # --- build ----------------------------------------------------------------------------------

    def build(self, instance_ids: list[str]) -> None:
        self._building.update(instance_ids)
        self._spawn(self._build_all(instance_ids))

    async def _build_all(self, instance_ids: list[str]) -> None:
        for iid in instance_ids:
            try:
                await self._build(iid)
            except Exception as exc:
                log.exception("building instance %s failed", iid)
                self._fail(iid, f"Build of instance {iid} aborted: {exc}", 500)
            finally:
                self._building.discard(iid)

    def _load(self, iid: str) -> Instance | None:
        with self.svc.session() as s:
            return s.get(Instance, iid)

    def _doomed(self, iid: str) -> bool:
        inst = self._load(iid)
        return inst is None or inst.deleted or inst.task_state == "deleting"

    async def _build(self, iid: str) -> None:
        inst = self._load(iid)
        if inst is None or inst.deleted:
            return
        # Past scheduling: a build a restart of the process interrupted, which may have made ports already.
        resumed = inst.task_state in ("networking", "block_device_mapping")
        if inst.task_state == "deleting":
            await self._finalize_delete(iid)
            return
        try:
            host = self.placer.place(inst)
        except NoValidHost as exc:
            self._fail(iid, str(exc), 500)
            return
        with self.svc.session() as s:
            row = s.get(Instance, iid)
            assert row is not None
            row.host = host
            if not row.availability_zone:
                row.availability_zone = self.svc.admin.zone_of(host)
            if row.task_state != "deleting":
                row.task_state = "networking"
            row.updated_at = utcnow()
        if self._doomed(iid):
            await self._finalize_delete(iid)
            return
        inst = self._load(iid)
        assert inst is not None
        if resumed:
            self.net.release_strays(inst)
        try:
            ports, addresses = self.net.bind_all(inst, host)
        except errors.TinyError as exc:
            self._fail(iid, f"Build of instance {iid} aborted: failed to allocate the network(s): {exc}", 500)
            return
        with self.svc.session() as s:
            row = s.get(Instance, iid)
            assert row is not None
            row.ports = ports
            row.addresses = addresses
            volumes = bool(row.doc.get("bdm_requests"))
            if row.task_state != "deleting":
                row.task_state = "block_device_mapping" if volumes else "spawning"
            row.updated_at = utcnow()
        if volumes and not self._doomed(iid):
            try:
                await self.svc.bootvolumes.prepare(iid, service_context(inst))
            except BuildAborted as exc:
                if self._doomed(iid):
                    await self._finalize_delete(iid)
                else:
                    self._fail(iid, str(exc), 500)
                return
            with self.svc.session() as s:
                row = s.get(Instance, iid)
                if row is not None and row.task_state == "block_device_mapping":
                    row.task_state = "spawning"
                    row.updated_at = utcnow()
        if self._doomed(iid):
            await self._finalize_delete(iid)
            return
        await self.publish(iid)

    def _fail(self, iid: str, message: str, code: int) -> None:
        """ERROR with a fault; what was claimed stays until delete (Nova keeps a failed server's ports too)."""
        with self.svc.session() as s:
            inst = s.get(Instance, iid)
            if inst is None or inst.deleted:
                return
            inst.vm_state = states.ERROR
            if inst.task_state != "deleting":
                inst.task_state = None
            inst.fault = {"message": message[:255], "code": code, "details": message,
                          "created": utcnow().isoformat()}
            inst.updated_at = utcnow()
            self.svc.actions.finish(s, iid, "Error", inst.host, message)
        if code == 500 and "No valid host" in message:
            self.placer.release(iid)

    # --- publishing the desired state -----------------------------------------------------------

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

    # --- delete ---------------------------------------------------------------------------------

    async def delete(self, iid: str) -> None:
        """The row says ``deleting``; finish at once when no agent holds the guest, else ask the agent."""
        if iid in self._building:
            return  # the build notices at its next step and cleans up what it made
        inst = self._load(iid)
        if inst is None or inst.deleted:
            return
        if not inst.host or not self.svc.admin.host_up(inst.host):
            await self._finalize_delete(iid)
            return
        await self.publish(iid)

    async def _finalize_delete(self, iid: str) -> None:
        """Give back everything the server held: ports, placement allocation, group membership; mark deleted."""
        inst = self._load(iid)
        if inst is None or inst.deleted:
            return
        try:
            self.net.unbind_all(inst)
        except Exception:
            log.exception("releasing the ports of %s failed; they stay for an operator to remove", iid)
        self.placer.release(iid)
        self.svc.admin.forget_member(iid)
        self.svc.bootvolumes.release_unmapped(inst, service_context(inst))
        self.svc.volumes.release_all(inst, service_context(inst))
        with self.svc.session() as s:
            row = s.get(Instance, iid)
            if row is None or row.deleted:
                return
            now = utcnow()
            row.deleted, row.deleted_at, row.terminated_at = True, now, now
            row.vm_state, row.task_state, row.power_state = states.DELETED, None, states.NOSTATE
            row.updated_at = now
            self.svc.actions.finish(s, iid, "Success", row.host)

    async def _finish_deletes_on_down_hosts(self) -> None:
        with self.svc.session() as s:
            rows = list(s.execute(select(Instance.id, Instance.host).where(
                Instance.deleted.is_(False), Instance.task_state == "deleting")).all())
        for iid, host in rows:
            if iid not in self._building and (not host or not self.svc.admin.host_up(host)):
                await self._finalize_delete(iid)

    # --- agent reports --------------------------------------------------------------------------

    async def on_status(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "node":
            self.svc.admin.upsert_node(msg.get("host") or msg.get("id") or "", msg.get("status") or {})
        elif kind == "instance":
            await self._instance_status(msg)

    async def _instance_status(self, msg: dict[str, Any]) -> None:
        from tinystack.compute.lifecycle import settle

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

    async def on_resync(self, msg: dict[str, Any]) -> None:
        """An agent started: send it every instance it should hold, then the complete set."""
        host = msg.get("host")
        if not isinstance(host, str):
            return
        for topic, message in self.host_messages(host):
            await self.svc.bus.publish(topic, message)

    async def on_heartbeat(self, msg: dict[str, Any]) -> None:
        if msg.get("agent") != "compute" or not isinstance(msg.get("host"), str):
            return
        self.svc.admin.heartbeat(msg["host"], "nova-compute", float(msg.get("time") or time.time()))

    @staticmethod
    def net_ctx(inst: Instance) -> RequestContext:
        return service_context(inst)

    def node_hosts(self) -> list[str]:
        with self.svc.session() as s:
            return list(s.scalars(select(ComputeNode.host)).all())

    # --- moves ----------------------------------------------------------------------------------

    def rebuild_elsewhere(self, iid: str) -> None:
        """Unshelve: a new host, ports bound there, then the doc (the build path without new rows)."""
        self._building.add(iid)

        async def run() -> None:
            try:
                inst = self._load(iid)
                if inst is None:
                    return
                try:
                    host = self.placer.place(inst)
                except NoValidHost as exc:
                    self._fail(iid, str(exc), 500)
                    return
                with self.svc.session() as s:
                    row = s.get(Instance, iid)
                    assert row is not None
                    row.host = host
                await self.rebind_ports(iid, publish=False)
                await self.publish(iid)
            finally:
                self._building.discard(iid)

        self._spawn(run())

    def rebind_soon(self, iid: str) -> None:
        self._spawn(self.rebind_ports(iid))

    async def rebind_ports(self, iid: str, publish: bool = True) -> None:
        """Point the server's ports at its (new) host, so the network agent there plugs them."""
        inst = self._load(iid)
        if inst is None or not inst.host:
            return
        await asyncio.to_thread(self.net.rebind, inst, inst.host)
        if publish:
            await self.publish(iid)
