"""The conductor's builds: schedule and claim, bind the ports, prepare boot volumes, then publish; unshelve takes
the same path without new rows."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from tinystack.compute import states
from tinystack.compute.actions import Actions
from tinystack.compute.admin import Admin
from tinystack.compute.bootvolumes import BootVolumes, BuildAborted
from tinystack.compute.conductor_delete import Deleting, log, service_context
from tinystack.compute.conductor_publish import BUILD_TASKS
from tinystack.compute.models import Instance, utcnow
from tinystack.compute.placing import NoValidHost
from tinystack.core import errors


class Building(Deleting):
    """Mixin of ``Conductor``, which sets these attributes."""

    _tasks: set[asyncio.Task[Any]]
    _building: set[str]
    hosts: Admin
    bootvolumes: BootVolumes

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        return self._spawn(coro)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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

    def renew_builds(self) -> None:
        """Mark this process's builds that are still before publishing as alive, so that a build queued behind
        others in a live but busy process is never taken for one a dead process left (``adopt_orphan_builds``)."""
        mine = list(self._building)
        if not mine:
            return
        with self.session() as s:
            for row in s.scalars(select(Instance).where(
                    Instance.id.in_(mine), Instance.deleted.is_(False), Instance.vm_state == states.BUILDING,
                    Instance.task_state.in_(BUILD_TASKS))).all():
                row.updated_at = utcnow()

    async def adopt_orphan_builds(self, after: float) -> None:
        """Builds before publishing that no process has moved on for ``after`` seconds: the API process that
        began them died (a live process renews its own every housekeeping round, ``renew_builds``). Picked up
        as a restart picks up its own (``Conductor.start``)."""
        cutoff = utcnow() - timedelta(seconds=after)
        with self.session() as s:
            stuck = [iid for iid in s.scalars(select(Instance.id).where(
                Instance.deleted.is_(False), Instance.vm_state == states.BUILDING,
                Instance.task_state.in_(BUILD_TASKS), Instance.updated_at < cutoff)).all()
                if iid not in self._building]
        if stuck:
            log.warning("adopting %d build(s) their API process left: %s", len(stuck), stuck)
            with self.session() as s:  # moves them on, so another sweep does not take them again at once
                for row in s.scalars(select(Instance).where(Instance.id.in_(stuck))).all():
                    row.updated_at = utcnow()
            self.build(stuck)

    def expire_builds(self, timeout: float) -> list[str]:
        """Nova's ``instance_build_timeout``: servers still building ``timeout`` seconds after they were created go
        to ERROR with a fault, whatever holds them: a build task that hangs in a live process (which renews it, so
        no sweep adopts it), or a guest an agent never reported. 0 turns it off. Returns the ids failed."""
        if timeout <= 0:
            return []
        cutoff = utcnow() - timedelta(seconds=timeout)
        with self.session() as s:
            expired = list(s.scalars(select(Instance.id).where(
                Instance.deleted.is_(False), Instance.vm_state == states.BUILDING, Instance.created_at < cutoff,
                or_(Instance.task_state.is_(None), Instance.task_state != "deleting"))).all())
        failed = []
        for iid in expired:
            message = f"Build of instance {iid} aborted: it did not finish within build_timeout ({timeout:g} s)"
            now = utcnow()
            with self.session() as s:
                # Compare-and-set: a report that settled it, or a delete, since the query wins.
                done = s.execute(update(Instance).where(
                    Instance.id == iid, Instance.deleted.is_(False), Instance.vm_state == states.BUILDING,
                    or_(Instance.task_state.is_(None), Instance.task_state != "deleting")).values(
                    vm_state=states.ERROR, task_state=None, updated_at=now,
                    fault={"message": message[:255], "code": 500, "details": message, "created": now.isoformat()}))
                if done.rowcount:  # type: ignore[attr-defined]
                    host = s.scalar(select(Instance.host).where(Instance.id == iid))
                    Actions.finish(s, iid, "Error", host, message)
                    failed.append(iid)
        if failed:
            log.warning("failed %d build(s) past build_timeout (%g s): %s", len(failed), timeout, failed)
        return failed

    async def sweep_builds(self, orphan_after: float, timeout: float) -> None:
        """The cloud's one sweep of builds (a lease holder runs it): fail those past ``build_timeout``, then adopt
        those a dead process left."""
        self.expire_builds(timeout)
        await self.adopt_orphan_builds(orphan_after)

    def _given_up(self, iid: str) -> bool:
        """The build was failed meanwhile (``expire_builds``): it stops where it is and does not publish, so its
        agent's report can never settle it ACTIVE; what it claimed stays until delete, as with any failed build."""
        inst = self.load(iid)
        return inst is not None and not inst.deleted and inst.vm_state != states.BUILDING

    def _doomed(self, iid: str) -> bool:
        inst = self.load(iid)
        return inst is None or inst.deleted or inst.task_state == "deleting"

    async def _build(self, iid: str) -> None:
        inst = self.load(iid)
        if inst is None or inst.deleted:
            return
        # Past scheduling: a build a restart of the process interrupted, which may have made ports already.
        resumed = inst.task_state in ("networking", "block_device_mapping")
        if inst.task_state == "deleting":
            await self._finalize_delete(iid)
            return
        if inst.vm_state != states.BUILDING:
            return  # failed past build_timeout before this (adopted or restarted) build began
        try:
            host = self.placer.place(inst)
        except NoValidHost as exc:
            self._fail(iid, str(exc), 500)
            return
        with self.session() as s:
            row = s.get(Instance, iid)
            assert row is not None
            if row.vm_state != states.BUILDING:
                return
            row.host = host
            if not row.availability_zone:
                row.availability_zone = self.hosts.zone_of(host)
            if row.task_state != "deleting":
                row.task_state = "networking"
            row.updated_at = utcnow()
        if self._doomed(iid):
            await self._finalize_delete(iid)
            return
        inst = self.load(iid)
        assert inst is not None
        if resumed:
            self.net.release_strays(inst)
        try:
            ports, addresses = self.net.bind_all(inst, host)
        except errors.TinyError as exc:
            self._fail(iid, f"Build of instance {iid} aborted: failed to allocate the network(s): {exc}", 500)
            return
        with self.session() as s:
            row = s.get(Instance, iid)
            assert row is not None
            row.ports = ports  # recorded even when it was given up meanwhile: its delete removes them
            row.addresses = addresses
            row.doc = {**row.doc, "ports_host": host}
            volumes = bool(row.doc.get("bdm_requests"))
            if row.task_state != "deleting" and row.vm_state == states.BUILDING:
                row.task_state = "block_device_mapping" if volumes else "spawning"
            row.updated_at = utcnow()
        if volumes and not self._doomed(iid) and not self._given_up(iid):
            try:
                await self.bootvolumes.prepare(iid, service_context(inst))
            except BuildAborted as exc:
                if self._doomed(iid):
                    await self._finalize_delete(iid)
                else:
                    self._fail(iid, str(exc), 500)
                return
            with self.session() as s:
                row = s.get(Instance, iid)
                if row is not None and row.task_state == "block_device_mapping" and row.vm_state == states.BUILDING:
                    row.task_state = "spawning"
                    row.updated_at = utcnow()
        if self._doomed(iid):
            await self._finalize_delete(iid)
            return
        if self._given_up(iid):
            return
        await self._publish_build(iid)

    async def _publish_build(self, iid: str) -> None:
        """Publish a build whose host and ports are ready. If the bus cannot take it now, the build is not failed:
        its row is committed, so once it leaves ``_building`` the publisher's work list has it and sends it again
        (with the publisher's retries) when the bus is back."""
        try:
            await self.publish(iid)
        except ConnectionError as exc:
            log.warning("instance %s: its desired state could not be published yet (%s); the publisher retries",
                        iid, exc)
            self._building.discard(iid)
            self.publish_soon(iid)

    def _fail(self, iid: str, message: str, code: int) -> None:
        """ERROR with a fault; what was claimed stays until delete (Nova keeps a failed server's ports too)."""
        with self.session() as s:
            inst = s.get(Instance, iid)
            if inst is None or inst.deleted:
                return
            inst.vm_state = states.ERROR
            if inst.task_state != "deleting":
                inst.task_state = None
            inst.fault = {"message": message[:255], "code": code, "details": message,
                          "created": utcnow().isoformat()}
            inst.updated_at = utcnow()
            Actions.finish(s, iid, "Error", inst.host, message)
        if code == 500 and "No valid host" in message:
            self.placer.release(iid)

    def rebuild_elsewhere(self, iid: str) -> None:
        """Unshelve: a new host, then the doc; publishing binds the ports there first (the build path without new
        rows)."""
        self._building.add(iid)

        async def run() -> None:
            try:
                inst = self.load(iid)
                if inst is None:
                    return
                try:
                    host = self.placer.place(inst)
                except NoValidHost as exc:
                    self._fail(iid, str(exc), 500)
                    return
                with self.session() as s:
                    row = s.get(Instance, iid)
                    assert row is not None
                    row.host = host
                await self._publish_build(iid)
            finally:
                self._building.discard(iid)

        self._spawn(run())
