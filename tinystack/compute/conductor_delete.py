"""The conductor's delete: ask the holding agent, or finish at once when none can, giving back ports,
allocation, group membership and volumes."""

from __future__ import annotations

import logging

from sqlalchemy import select

from tinystack.compute import states
from tinystack.compute.actions import Actions
from tinystack.compute.admin import Admin
from tinystack.compute.bootvolumes import BootVolumes
from tinystack.compute.conductor_publish import Publishing
from tinystack.compute.models import Instance, utcnow
from tinystack.compute.placing import Placer
from tinystack.compute.volumes import Volumes
from tinystack.core.auth import RequestContext
from tinystack.core.service import acting_for

# The conductor's own logger, so its lines keep the name operators filter on.
log = logging.getLogger("tinystack.compute.conductor")


def service_context(inst: Instance) -> RequestContext:
    """Acting for the instance's owner with admin rights (binding:host_id is admin-only in Neutron)."""
    return acting_for(inst.user_id, inst.project_id)


class Deleting(Publishing):
    """Mixin of ``Conductor``, which sets these attributes."""

    placer: Placer
    hosts: Admin
    volumes: Volumes
    bootvolumes: BootVolumes

    async def delete(self, iid: str) -> None:
        """The row says ``deleting``; finish at once when no agent holds the guest, else ask the agent."""
        if iid in self._building:
            return  # the build notices at its next step and cleans up what it made
        inst = self.load(iid)
        if inst is None or inst.deleted:
            return
        if not inst.host or not self.hosts.host_up(inst.host):
            await self._finalize_delete(iid)
            return
        await self.publish(iid)

    async def _finalize_delete(self, iid: str) -> None:
        """Give back everything the server held: ports, placement allocation, group membership; mark deleted."""
        inst = self.load(iid)
        if inst is None or inst.deleted:
            return
        try:
            self.net.unbind_all(inst)
        except Exception:
            log.exception("releasing the ports of %s failed; they stay for an operator to remove", iid)
        self.placer.release(iid)
        self.hosts.forget_member(iid)
        self.bootvolumes.release_unmapped(inst, service_context(inst))
        self.volumes.release_all(inst, service_context(inst))
        with self.session() as s:
            row = s.get(Instance, iid)
            if row is None or row.deleted:
                return
            now = utcnow()
            row.deleted, row.deleted_at, row.terminated_at = True, now, now
            row.vm_state, row.task_state, row.power_state = states.DELETED, None, states.NOSTATE
            row.updated_at = now
            Actions.finish(s, iid, "Success", row.host)

    async def _finish_deletes_on_down_hosts(self) -> None:
        with self.session() as s:
            rows = list(s.execute(select(Instance.id, Instance.host).where(
                Instance.deleted.is_(False), Instance.task_state == "deleting")).all())
        for iid, host in rows:
            if iid not in self._building and (not host or not self.hosts.host_up(host)):
                await self._finalize_delete(iid)
