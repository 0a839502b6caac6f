"""The actions that change a server's image, flavor or host: createImage, rebuild, resize/confirm/revert,
shelve/unshelve; the moves (migrate, live migration, evacuate) are in ``lifecycle_moves``, and settling agent
reports into Nova states in ``settle``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, object_session

from tinystack.compute import flavors, states
from tinystack.compute.lifecycle_moves import Enforce, Moves
from tinystack.compute.models import Instance, utcnow
from tinystack.compute.placing import NoValidHost, Placer
from tinystack.compute.servers import check_image_fits
from tinystack.compute.settle import set_migration_status
from tinystack.compute.states import ACTIVE, ERROR, PAUSED_VM, RESIZED, SHELVED_OFFLOADED, STOPPED, SUSPENDED_VM
from tinystack.compute.volumes import volume_backed
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.image.interface import ImageAPI

if TYPE_CHECKING:
    from tinystack.compute.actions import Actions
    from tinystack.compute.admin import Admin
    from tinystack.compute.conductor import Conductor
    from tinystack.compute.flavors import Flavors
    from tinystack.compute.keypairs import Keypairs
    from tinystack.compute.quotas import Quotas
    from tinystack.compute.servers import Servers

log = logging.getLogger(__name__)
P = "os_compute_api"


class Lifecycle(Moves):
    """The server actions; the moves between hosts are ``lifecycle_moves``. Its collaborators come in: the rules
    it builds on (servers, actions, flavors, quotas, keypairs, hosts), placement's claims (``placer``), the
    conductor that publishes and places, and the image service."""

    def __init__(self, *, session: Callable[[], AbstractContextManager[Session]],
                 enforce: Enforce, servers: Servers,
                 actions: Actions, flavors: Flavors, quotas: Quotas, keypairs: Keypairs, hosts: Admin,
                 images: Callable[[], ImageAPI], placer: Placer, conductor: Conductor) -> None:
        self.session = session
        self.enforce = enforce
        self.servers = servers
        self.actions = actions
        self.flavors = flavors
        self.quotas = quotas
        self.keypairs = keypairs
        self.hosts = hosts
        self.images = images
        self.placer = placer
        self.conductor = conductor

    # --- snapshot -------------------------------------------------------------------------------

    def create_image(self, ctx: RequestContext, sid: str, rid: str, name: str, metadata: dict[str, str],
                     action: str = "createImage") -> str:
        """A snapshot: the image record is made now (queued); the agent uploads its data."""
        inst = self.servers.get(ctx, sid)
        if inst.vm_state not in (ACTIVE, STOPPED, PAUSED_VM, SUSPENDED_VM) or inst.task_state is not None:
            raise errors.Conflict(f"Cannot '{action}' instance {sid} while it is in vm_state {inst.vm_state}")
        base = inst.doc.get("image") or {}
        body: dict[str, Any] = {"name": name, "disk_format": "qcow2", "container_format": "bare",
                                "visibility": "private", "min_disk": inst.flavor["root_gb"],
                                "min_ram": base.get("min_ram", 0)}
        props = {**{k: v for k, v in (base.get("properties") or {}).items()
                    if k in ("kernel_id", "ramdisk_id", "os_distro", "os_type", "hw_disk_bus")},
                 "image_type": "snapshot", "instance_uuid": inst.id, "base_image_ref": inst.image_ref,
                 "owner_user_name": ctx.user_name, "user_id": ctx.user_id,
                 # The caller's metadata comes last: Nova lets it override even image_type.
                 **{k: str(v) for k, v in metadata.items()}}
        body.update({k: v for k, v in props.items() if v is not None})
        image = self.images().create(ctx, body)

        def change(i: Instance, doc: dict[str, Any]) -> None:
            seq = int((doc.get("snapshot") or {}).get("seq", 0)) + 1
            doc["snapshot"] = {"seq": seq, "image_id": image.id}

        self.actions.transition(ctx, sid, action, rid, vm_states=(inst.vm_state,),
                                    task_state="image_snapshot", target=inst.vm_state, change=change)
        return str(image.id)

    # --- rebuild --------------------------------------------------------------------------------

    def rebuild(self, ctx: RequestContext, sid: str, rid: str, body: dict[str, Any]) -> str:
        inst = self.servers.get(ctx, sid)
        if volume_backed(inst):
            # Re-imaging the root volume (Nova 2.93) needs the volume service to rewrite it: not offered.
            raise errors.BadRequest(f"Rebuilding volume-backed instance {sid} is not supported by this cloud.")
        image = self.servers.image_info(ctx, str(body.get("imageRef") or ""))
        check_image_fits(image, inst.flavor)
        from tinystack.compute.servers import admin_password

        password = body.get("adminPass") or admin_password()

        def change(i: Instance, doc: dict[str, Any]) -> None:
            doc["image"] = image
            doc["rebuild"] = {"seq": int((doc.get("rebuild") or {}).get("seq", 0)) + 1}
            doc["power"] = "running"
            i.image_ref = image["id"]
            i.admin_pass = password
            if "name" in body:
                i.name = body["name"]
            if "metadata" in body:
                i.meta = dict(body["metadata"])
            if "description" in body:
                i.description = body["description"]
            if "user_data" in body:
                i.user_data = body["user_data"]
            if body.get("key_name") is not None:
                kp = self.keypairs.get(ctx, body["key_name"])
                i.key_name, i.key_data = kp.name, kp.public_key

        self.actions.transition(ctx, sid, "rebuild", rid, vm_states=(ACTIVE, STOPPED, ERROR),
                                    task_state="rebuilding", target=ACTIVE, change=change)
        return password

    # --- resize ---------------------------------------------------------------------------------

    def resize(self, ctx: RequestContext, sid: str, rid: str, flavor_ref: str) -> None:
        inst = self.servers.get(ctx, sid)
        try:
            new = flavors.snapshot(self.flavors.get(ctx, flavor_ref))
        except errors.NotFound:
            raise errors.BadRequest(f"Unable to find flavor {flavor_ref}") from None
        if new["id"] == inst.flavor["id"]:
            raise errors.BadRequest("When resizing, instances must change flavor!")
        if new["root_gb"] < inst.flavor["root_gb"] and not volume_backed(inst):
            raise errors.BadRequest("Resize error: Unable to resize disk down.")
        if inst.vm_state not in (ACTIVE, STOPPED) or inst.task_state is not None:
            raise errors.Conflict(f"Cannot 'resize' instance {sid} while it is in vm_state {inst.vm_state}")
        check_image_fits(inst.doc.get("image") or {}, new, volume_backed=volume_backed(inst))
        with self.session() as s:
            self.quotas.check_delta(s, inst.project_id, new["vcpus"] - inst.flavor["vcpus"],
                                        new["memory_mb"] - inst.flavor["memory_mb"])
        host = inst.host or ""
        if not self.placer.move(inst, host, _sum(inst.flavor, new)):
            raise NoValidHost(f"Host {host} has no room for flavor {new['name']}.")
        mig = self._migration(inst, "resize", host, host, new["id"])

        def change(i: Instance, doc: dict[str, Any]) -> None:
            i.new_flavor = new
            doc["old_flavor"] = i.flavor
            i.flavor = new
            doc["migration"] = {"id": mig, "kind": "resize", "source_host": host, "dest_host": host}

        self.actions.transition(ctx, sid, "resize", rid, vm_states=(ACTIVE, STOPPED), task_state="resize_prep",
                                    target=RESIZED, change=change)

    def confirm_resize(self, ctx: RequestContext, sid: str, rid: str) -> None:
        inst = self.servers.get(ctx, sid)
        if inst.vm_state != RESIZED:
            raise errors.Conflict(f"Cannot 'confirmResize' instance {sid} while it is in vm_state {inst.vm_state}")
        self.placer.move(inst, inst.host or "", inst.flavor)
        with self.session() as s:
            row = self.servers.find(s, ctx, sid)
            set_migration_status(s, row, "confirmed")
            row.vm_state = ACTIVE if row.doc.get("power", "running") == "running" else STOPPED
            row.new_flavor = None
            row.doc = {k: v for k, v in row.doc.items() if k not in ("migration", "old_flavor")}
            row.updated_at = utcnow()
            self.actions.record(s, ctx, sid, "confirmResize", rid)
            self.actions.finish(s, sid, "Success", row.host)

    def revert_resize(self, ctx: RequestContext, sid: str, rid: str) -> None:
        """Back to the old flavor; after a cold migration also back to the source node, which takes the guest's
        files over again from the destination (shared instance storage)."""
        inst = self.servers.get(ctx, sid)
        old = inst.doc.get("old_flavor")
        if inst.vm_state != RESIZED or not old:
            raise errors.Conflict(f"Cannot 'revertResize' instance {sid} while it is in vm_state {inst.vm_state}")
        mig = dict(inst.doc.get("migration") or {})
        src, dest = str(mig.get("source_host") or ""), str(mig.get("dest_host") or "")
        moved = bool(src and dest and src != dest)
        self.placer.move(inst, src if moved else inst.host or "", old)

        def change(i: Instance, doc: dict[str, Any]) -> None:
            s = object_session(i)  # the transition's own transaction, which holds the row now
            assert s is not None
            set_migration_status(s, i, "reverted")
            i.flavor, i.new_flavor = old, None
            doc.pop("old_flavor", None)
            doc.pop("migration", None)
            if moved:
                doc.setdefault("ports_host", i.host)
                i.host = src
                doc["migration"] = {"id": mig.get("id"), "kind": "cold", "source_host": dest, "dest_host": src,
                                    "revert": True}

        target = ACTIVE if inst.doc.get("power", "running") == "running" else STOPPED
        # After a cold migration the source (now ``dest``) hands the files back: its delete is part of the
        # published state, as is the ports' binding back to ``src`` (``ports_host``).
        self.actions.transition(ctx, sid, "revertResize", rid, vm_states=(RESIZED,),
                                task_state="resize_reverting", target=target, change=change)

    # --- shelve ---------------------------------------------------------------------------------

    def shelve(self, ctx: RequestContext, sid: str, rid: str) -> None:
        """Snapshot and stop; once the agent confirms, the guest leaves its host (shelve offload)."""
        inst = self.servers.get(ctx, sid)
        if inst.vm_state not in (ACTIVE, STOPPED, PAUSED_VM, SUSPENDED_VM) or inst.task_state is not None:
            raise errors.Conflict(f"Cannot 'shelve' instance {sid} while it is in vm_state {inst.vm_state}")
        base = inst.doc.get("image") or {}
        # A volume-backed server's disk stays in its volume, so Nova takes no snapshot of it.
        image = None if volume_backed(inst) else self.images().create(ctx, {
            "name": f"{inst.name}-shelved", "disk_format": "qcow2", "container_format": "bare",
            "visibility": "private", "min_disk": inst.flavor["root_gb"], "image_type": "snapshot",
            "instance_uuid": inst.id, "base_image_ref": inst.image_ref,
            **{k: v for k, v in (base.get("properties") or {}).items() if k in ("kernel_id", "ramdisk_id")}})

        def change(i: Instance, doc: dict[str, Any]) -> None:
            if image is not None:
                doc["snapshot"] = {"seq": int((doc.get("snapshot") or {}).get("seq", 0)) + 1, "image_id": image.id}
                doc["shelved_image_id"] = image.id
            doc["power"] = "stopped"

        self.actions.transition(ctx, sid, "shelve", rid, vm_states=(inst.vm_state,), task_state="shelving",
                                    target=SHELVED_OFFLOADED, change=change)

    def unshelve(self, ctx: RequestContext, sid: str, rid: str, az: str | None) -> None:
        with self.session() as s:
            inst = self.servers.find(s, ctx, sid, f"{P}:servers:action")
            self.actions.check_lock(ctx, inst)
            if inst.vm_state != SHELVED_OFFLOADED or inst.task_state is not None:
                raise errors.Conflict(f"Cannot 'unshelve' instance {sid} while it is in vm_state {inst.vm_state}")
            shelved = inst.doc.get("shelved_image_id")
        image = None
        if shelved:
            try:
                image = self.servers.image_info(ctx, shelved)
            except errors.BadRequest:
                # The agent never finished uploading the shelve snapshot: boot from the image the server had.
                log.warning("unshelve of %s: snapshot %s is not usable; using the original image", sid, shelved)

        def change(i: Instance, doc: dict[str, Any]) -> None:
            if image is not None:
                doc["image"] = image
            doc["power"] = "running"
            doc["snapshot"] = None
            doc.pop("offloaded_from", None)
            if az:
                i.availability_zone = az
            i.vm_state = states.SHELVED_OFFLOADED

        self.actions.transition(ctx, sid, "unshelve", rid, vm_states=(SHELVED_OFFLOADED,),
                                    task_state="spawning", target=ACTIVE, change=change, publish=False)
        self.conductor.rebuild_elsewhere(sid)


def _sum(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """During a resize both flavors are held (Nova's migration allocation), so revert always fits."""
    keys = ("vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap")
    return {k: max(int(a.get(k, 0)), int(b.get(k, 0))) for k in keys}
