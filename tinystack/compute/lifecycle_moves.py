"""The lifecycle actions that move a server to another host: cold migration, live migration and evacuation,
each with its migration record and a destination claimed in placement."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from tinystack.compute.livemigration import BIND
from tinystack.compute.models import Instance, Migration, utcnow
from tinystack.compute.placing import Placer
from tinystack.compute.states import ACTIVE, ERROR, PAUSED_VM, RESIZED, STOPPED
from tinystack.core import errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.actions import Actions
    from tinystack.compute.admin import Admin
    from tinystack.compute.conductor import Conductor
    from tinystack.compute.servers import Servers

P = "os_compute_api"


class Enforce(Protocol):
    """``ServiceBase.enforce``: raise PolicyNotAuthorized unless policy lets ``ctx`` do ``rule``."""

    def __call__(self, ctx: RequestContext, rule: str, target: Mapping[str, Any] | None = None) -> None: ...


class Moves:
    """Mixin of ``Lifecycle``, which sets these attributes."""

    session: Callable[[], AbstractContextManager[Session]]
    enforce: Enforce
    servers: Servers
    actions: Actions
    hosts: Admin
    placer: Placer
    conductor: Conductor

    def _migration(self, inst: Instance, kind: str, src: str, dest: str | None, new_flavor: str | None) -> str:
        import uuid

        mig_id = str(uuid.uuid4())
        with self.session() as s:
            now = utcnow()
            s.add(Migration(uuid=mig_id, instance_id=inst.id, project_id=inst.project_id, user_id=inst.user_id,
                            migration_type=kind, status="queued" if kind == "live-migration" else "pre-migrating",
                            source_compute=src, dest_compute=dest, old_flavor_id=inst.flavor["id"],
                            new_flavor_id=new_flavor or inst.flavor["id"], created_at=now, updated_at=now))
            s.flush()
            row = s.query(Migration).filter(Migration.uuid == mig_id).one()
            return str(row.id)

    def migrate(self, ctx: RequestContext, sid: str, rid: str, host: str | None) -> None:
        """Cold migration: the scheduler picks another host; the dest agent builds it, the source drops it."""
        self.enforce(ctx, f"{P}:os-migrate-server:migrate")
        inst = self.servers.get(ctx, sid)
        if inst.vm_state not in (ACTIVE, STOPPED) or inst.task_state is not None:
            raise errors.Conflict(f"Cannot 'migrate' instance {sid} while it is in vm_state {inst.vm_state}")
        src = inst.host or ""
        dest = self._place_elsewhere(inst, src, host)
        mig = self._migration(inst, "migration", src, dest, None)

        def change(i: Instance, doc: dict[str, Any]) -> None:
            doc["migration"] = {"id": mig, "kind": "cold", "source_host": src, "dest_host": dest}
            doc["old_flavor"] = i.flavor
            doc.setdefault("ports_host", i.host)
            i.new_flavor = i.flavor
            i.host = dest

        # The source powers the guest off and hands its files to the destination, which waits for them: the
        # conductor publishes both (Conductor.messages), after binding the ports to the destination.
        self.actions.transition(ctx, sid, "migrate", rid, vm_states=(ACTIVE, STOPPED), task_state="resize_prep",
                                target=RESIZED, change=change)

    def live_migrate(self, ctx: RequestContext, sid: str, rid: str, host: str | None) -> None:
        """Live migration: the destination's agent waits for the guest, the source's sends it; when the source
        reports it sent, the server's host becomes the destination (tinystack/compute/livemigration.py)."""
        self.enforce(ctx, f"{P}:os-migrate-server:migrate_live")
        inst = self.servers.get(ctx, sid)
        if inst.vm_state not in (ACTIVE, PAUSED_VM) or inst.task_state is not None:
            raise errors.Conflict(f"Cannot 'os-migrateLive' instance {sid} while it is in vm_state {inst.vm_state}")
        src = inst.host or ""
        if host == src:
            raise errors.BadRequest(f"The supplied hypervisor {host} is the current host of the instance.")
        if host is not None and host not in self.conductor.node_hosts():
            raise errors.BadRequest(f"Compute host {host} could not be found.")
        dest = self._place_elsewhere(inst, src, host)
        mig = self._migration(inst, "live-migration", src, dest, None)

        def change(i: Instance, doc: dict[str, Any]) -> None:
            doc["migration"] = {"id": mig, "kind": "live", "source_host": src, "dest_host": dest, "stage": BIND}

        # Publishing this generation binds the ports on the destination first (LiveMigrations.prepare).
        self.actions.transition(ctx, sid, "live-migration", rid, vm_states=(inst.vm_state,),
                                task_state="migrating", target=inst.vm_state, change=change)

    def _place_elsewhere(self, inst: Instance, src: str, host: str | None) -> str:
        """A host other than ``src`` with the resources claimed. As Nova resets a boot's forced destination for
        moves, only ``host`` (the operator's choice for this move) forces one, not the host forced at boot."""
        doc = inst.doc
        inst.doc = {k: v for k, v in doc.items() if k != "forced_host"}  # a detached copy: nothing is written
        try:
            return self.placer.place(inst, exclude=(src,), forced_host=host)
        finally:
            inst.doc = doc

    def evacuate(self, ctx: RequestContext, sid: str, rid: str, host: str | None, admin_pass: str | None) -> str:
        self.enforce(ctx, f"{P}:os-evacuate")
        inst = self.servers.get(ctx, sid)
        if inst.host and self.hosts.host_up(inst.host):
            raise errors.BadRequest(f"Compute service of {inst.host} is still in use.")
        if inst.vm_state not in (ACTIVE, STOPPED, ERROR) or inst.task_state is not None:
            raise errors.Conflict(f"Cannot 'evacuate' instance {sid} while it is in vm_state {inst.vm_state}")
        from tinystack.compute.servers import admin_password

        password = admin_pass or admin_password()
        src = inst.host or ""
        dest = self._place_elsewhere(inst, src, host)
        mig = self._migration(inst, "evacuation", src, dest, None)

        def change(i: Instance, doc: dict[str, Any]) -> None:
            doc["rebuild"] = {"seq": int((doc.get("rebuild") or {}).get("seq", 0)) + 1}
            doc["migration"] = {"id": mig, "kind": "evacuation", "source_host": src, "dest_host": dest}
            doc.setdefault("ports_host", i.host)
            i.host = dest
            i.admin_pass = password

        self.actions.transition(ctx, sid, "evacuate", rid, vm_states=(inst.vm_state,), task_state="rebuilding",
                                target=ACTIVE if inst.vm_state != STOPPED else STOPPED, change=change)
        return password
