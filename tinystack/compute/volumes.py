"""Volumes on servers (Nova's os-volume_attachments): block device mappings, the volume service calls that
reserve and release volumes, and the conductor's part of docs/contracts.md "Volumes on servers"."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tinystack.compute import states
from tinystack.compute.models import BlockDeviceMapping, Instance, utcnow
from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.volume.interface import VOLUME

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tinystack.compute.service import ComputeService

log = logging.getLogger(__name__)
P = "os_compute_api:os-volumes-attachments"
ATTACHING, ATTACHED, DETACHING = "attaching", "attached", "detaching"
# Nova's check_instance_state for attach and detach (soft-deleted and shelved servers do not exist here).
ALLOWED_VM_STATES = (states.ACTIVE, states.PAUSED_VM, states.STOPPED, states.RESIZED, states.SHELVED_OFFLOADED)
# Volumes besides the root one: the QEMU driver's PCI slots for them (docs/contracts.md).
LAST_DATA_VOLUMES = 16


def volume_backed(inst: Instance) -> bool:
    """Whether the server boots from a volume (its root disk is that volume, not an image overlay)."""
    return bool((inst.doc or {}).get("volume_backed"))


def device_letters(index: int) -> str:
    """0 → a, 25 → z, 26 → aa: the suffixes Linux gives virtio disks in probe order."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(ord("a") + rem) + out
    return out


def own_disks(inst: Instance) -> int:
    """How many disks the guest has before any volume: root, then ephemeral, swap and config drive if any."""
    f = inst.flavor or {}
    return 1 + (int(f.get("ephemeral_gb") or 0) > 0) + (int(f.get("swap") or 0) > 0) + bool(inst.config_drive)


def next_device(inst: Instance, taken: set[str]) -> str:
    """The first ``/dev/vdX`` after the instance's own disks that no volume holds."""
    index = own_disks(inst)
    while f"/dev/vd{device_letters(index)}" in taken:
        index += 1
    return f"/dev/vd{device_letters(index)}"


def serial(volume_id: str) -> str:
    """What the guest sees as the disk's serial (``/dev/disk/by-id/virtio-<serial>``): Nova's 20 characters."""
    return volume_id[:20]


@dataclass(frozen=True)
class Outcome:
    """One mapping the agent's report settled: the volume service call it needs, and the row's fate."""

    bdm_id: str
    attachment_id: str
    volume_id: str
    action: str  # complete, fail, detached, kept (the guest would not release it: the detach is rolled back)
    reason: str = ""


class Volumes:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    # --- lookups --------------------------------------------------------------------------------

    def attachments(self, ctx: RequestContext, sid: str) -> list[BlockDeviceMapping]:
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:index")
            return list(inst.bdms)

    def get(self, ctx: RequestContext, sid: str, volume_id: str) -> BlockDeviceMapping:
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:show")
            return self._find(inst, volume_id)

    @staticmethod
    def _find(inst: Instance, volume_id: str) -> BlockDeviceMapping:
        for bdm in inst.bdms:
            if bdm.volume_id == volume_id:
                return bdm
        raise errors.NotFound(f"volume_id not found: {volume_id}")

    def _check(self, s: Session, ctx: RequestContext, sid: str, rule: str, action: str) -> Instance:
        inst = self.svc.servers.find(s, ctx, sid, rule)
        self.svc.actions.check_lock(ctx, inst)
        if inst.vm_state not in ALLOWED_VM_STATES or inst.task_state is not None:
            raise errors.Conflict(f"Cannot '{action}' instance {sid} while it is in vm_state {inst.vm_state}"
                                  + (f", task_state {inst.task_state}" if inst.task_state else ""))
        return inst

    # --- attach, update, detach -----------------------------------------------------------------

    def attach(self, ctx: RequestContext, sid: str, request_id: str, volume_id: str, *, tag: str | None = None,
               delete_on_termination: bool = False) -> BlockDeviceMapping:
        """Reserve the volume and record the mapping; the agent attaches it and its report completes it.
        The caller's ``device`` is not honoured (as with Nova's libvirt driver): the next free name is."""
        with self.svc.session() as s:
            inst = self._check(s, ctx, sid, f"{P}:create", "attach_volume")
            if any(b.volume_id == volume_id for b in inst.bdms):
                raise errors.BadRequest(f"Invalid volume: volume {volume_id} is already attached to instance {sid}")
            device = next_device(inst, {b.device_name for b in inst.bdms})
        volume_svc = self.svc.service(VOLUME)
        reserved = volume_svc.reserve(ctx, volume_id, sid, device)
        attachment_id = str(reserved["attachment_id"])
        connection = {**(reserved.get("connection") or {}), "read_only": bool(reserved.get("read_only"))}
        try:
            bdm, host = self._record_attach(ctx, sid, request_id, volume_id, attachment_id, connection, tag,
                                            delete_on_termination)
        except BaseException as exc:
            volume_svc.attach_failed(attachment_id, f"attaching to instance {sid} failed: {exc}")
            raise
        if host is None:
            # No hypervisor holds the guest (shelved offloaded): it gets the volume when it boots again.
            self._settle([Outcome(bdm.id, attachment_id, volume_id, "complete")], sid)
        else:
            self.svc.conductor.publish_soon(sid)
        return bdm

    def _record_attach(self, ctx: RequestContext, sid: str, request_id: str, volume_id: str, attachment_id: str,
                       connection: dict[str, Any], tag: str | None,
                       delete_on_termination: bool) -> tuple[BlockDeviceMapping, str | None]:
        def attempt() -> tuple[BlockDeviceMapping, str | None]:
            with self.svc.session() as s:
                # Again, now that the volume is ours: the server may have changed meanwhile.
                inst = self._check(s, ctx, sid, f"{P}:create", "attach_volume")
                taken = {b.device_name for b in inst.bdms}
                seq = int(s.scalar(select(func.count()).select_from(BlockDeviceMapping)
                                   .where(BlockDeviceMapping.instance_uuid == sid)) or 0)
                generation = desired.bump_or_lose(s, Instance, sid, inst.generation, {"updated_at": utcnow()})
                bdm = BlockDeviceMapping(
                    id=str(uuid.uuid4()), instance_uuid=sid, volume_id=volume_id, attachment_id=attachment_id,
                    device_name=next_device(inst, taken), tag=tag, delete_on_termination=delete_on_termination,
                    state=ATTACHING, connection=connection, generation=generation, seq=seq,
                    created_at=utcnow())
                s.add(bdm)
                self.svc.actions.record(s, ctx, sid, "attach_volume", request_id)
                return bdm, inst.host

        try:
            bdm, host = desired.retry(attempt, what=f"Instance {sid}")
        except IntegrityError:
            raise errors.Conflict(f"Another attach to instance {sid} took the same device or volume; "
                                  "try again.") from None
        return bdm, host

    def update(self, ctx: RequestContext, sid: str, volume_id: str, body: dict[str, Any],
               swap_allowed_fields: bool) -> BlockDeviceMapping:
        """PUT: with the same volume (2.85+) only ``delete_on_termination`` may change; another volume is a
        swap, which needs the hypervisor to copy the data across (blockdev-mirror): not offered here."""
        new_volume = str(body.get("volumeId") or "")
        if new_volume != volume_id or not swap_allowed_fields:
            self.svc.enforce(ctx, f"{P}:swap")
            with self.svc.session() as s:
                self._find(self.svc.servers.find(s, ctx, sid, f"{P}:show"), volume_id)
            raise errors.BadRequest("Swapping the volume of an attachment is not supported by this cloud.")
        with self.svc.session() as s:
            inst = self._check(s, ctx, sid, f"{P}:update", "swap_volume")
            bdm = s.get(BlockDeviceMapping, self._find(inst, volume_id).id)
            assert bdm is not None
            for key, current in (("device", bdm.device_name), ("tag", bdm.tag), ("serverId", sid),
                                 ("id", volume_id)):
                if key in body and body[key] != current:
                    raise errors.BadRequest(f"Invalid input for field/attribute {key}: it cannot be updated")
            if "delete_on_termination" in body:
                bdm.delete_on_termination = bool(body["delete_on_termination"])
                inst.updated_at = utcnow()
            return bdm

    def detach(self, ctx: RequestContext, sid: str, request_id: str, volume_id: str) -> None:
        with self.svc.session() as s:
            inst = self._check(s, ctx, sid, f"{P}:delete", "detach_volume")
            bdm = self._find(inst, volume_id)
            if bdm.boot_index == 0:
                raise errors.BadRequest("Can't detach root device volume")
            if bdm.state != ATTACHED:
                raise errors.BadRequest(f"Invalid volume: Unable to detach volume {volume_id}: it is "
                                        f"{bdm.state}, and only an attached volume can be detached.")
        self.svc.service(VOLUME).begin_detach(bdm.attachment_id)

        def attempt() -> tuple[bool, str | None]:
            with self.svc.session() as s:
                inst = self.svc.servers.find(s, ctx, sid)
                row = s.get(BlockDeviceMapping, bdm.id)
                if row is None:
                    return False, None
                generation = desired.bump_or_lose(s, Instance, sid, inst.generation, {"updated_at": utcnow()})
                row.state, row.generation = DETACHING, generation
                self.svc.actions.record(s, ctx, sid, "detach_volume", request_id)
                return True, inst.host

        found, host = desired.retry(attempt, what=f"Instance {sid}")
        if not found:
            return
        if host is None:
            self._settle([Outcome(bdm.id, bdm.attachment_id, volume_id, "detached")], sid)
        else:
            self.svc.conductor.publish_soon(sid)

    # --- the conductor's part -------------------------------------------------------------------

    @staticmethod
    def doc(inst: Instance) -> list[dict[str, Any]]:
        """The ``volumes`` of the instance document: what the guest should have, in attach order."""
        return [{"volume_id": b.volume_id, "attachment_id": b.attachment_id, "serial": serial(b.volume_id),
                 "path": b.connection.get("path"), "format": b.connection.get("format") or "raw",
                 "read_only": bool(b.connection.get("read_only")), "device": b.device_name,
                 "boot_index": b.boot_index,
                 # Set by a volume-extended event: the size the running guest's disk must grow to.
                 **({"size_gb": int(b.connection["size_gb"])} if b.connection.get("size_gb") else {}),
                 # The volume node opens the path; every other node the NBD export, when there is one.
                 **({"volume_host": b.connection.get("volume_host"), "nbd": b.connection["nbd"]}
                    if b.connection.get("nbd") else {})}
                for b in inst.bdms if b.state in (ATTACHING, ATTACHED)]

    def on_status(self, iid: str, reported: list[str], observed: int,
                  detach_failed: dict[str, str] | None = None) -> None:
        """An agent said which volumes the guest has at ``observed``: complete attaches whose volume is there,
        fail those settled without it, complete detaches whose volume has gone, and roll back detaches the
        guest would not release (``detach_failed``: volume id → why) after the agent's bounded tries."""
        have = set(reported)
        refused = detach_failed or {}
        outcomes: list[Outcome] = []
        with self.svc.session() as s:
            for b in s.scalars(select(BlockDeviceMapping).where(BlockDeviceMapping.instance_uuid == iid,
                                                                BlockDeviceMapping.generation <= observed)):
                if b.state == ATTACHING and b.boot_index == 0 and b.volume_id not in have:
                    # The guest never booted from it (a failed build): it stays the server's until delete.
                    continue
                if b.state == ATTACHING:
                    outcomes.append(Outcome(b.id, b.attachment_id, b.volume_id,
                                            "complete" if b.volume_id in have else "fail"))
                elif b.state == DETACHING and b.volume_id not in have:
                    outcomes.append(Outcome(b.id, b.attachment_id, b.volume_id, "detached"))
                elif b.state == DETACHING and b.volume_id in refused:
                    outcomes.append(Outcome(b.id, b.attachment_id, b.volume_id, "kept", str(refused[b.volume_id])))
        if outcomes:
            self._settle(outcomes, iid)

    def _settle(self, outcomes: list[Outcome], iid: str) -> None:
        """Tell the volume service first (a failure there leaves the row, and the next report retries), then
        update the mappings; a failed attach leaves the desired state, and a detach the guest refused comes back
        into it, so either is published again."""
        volume_svc = self.svc.service(VOLUME)
        done: list[Outcome] = []
        for o in outcomes:
            try:
                if o.action == "complete":
                    volume_svc.attach_complete(o.attachment_id)
                elif o.action == "fail":
                    volume_svc.attach_failed(o.attachment_id, f"the hypervisor did not attach it to {iid}")
                elif o.action == "kept":
                    volume_svc.roll_detaching(o.attachment_id)
                else:
                    volume_svc.detach_complete(o.attachment_id)
            except errors.NotFound:
                log.warning("attachment %s of volume %s is gone from the volume service", o.attachment_id,
                            o.volume_id)
            except Exception:
                log.exception("volume %s: telling the volume service '%s' failed", o.volume_id, o.action)
                continue
            done.append(o)

        def attempt() -> bool:
            republish = False
            with self.svc.session() as s:
                inst = s.get(Instance, iid)
                for o in done:
                    row = s.get(BlockDeviceMapping, o.bdm_id)
                    if row is None:
                        continue
                    if o.action in ("complete", "kept"):
                        row.state = ATTACHED
                    else:
                        s.delete(row)
                    republish = republish or o.action in ("fail", "kept")
                if inst is not None and done:
                    if republish:
                        desired.bump_or_lose(s, Instance, iid, inst.generation, {"updated_at": utcnow()})
                    else:
                        inst.updated_at = utcnow()
                    self._finish_actions(s, inst, done)
            return republish

        if desired.retry(attempt, what=f"Instance {iid}"):
            self.svc.conductor.publish_soon(iid)

    def _finish_actions(self, s: Session, inst: Instance, done: list[Outcome]) -> None:
        """Close the attach and detach actions these outcomes settle; a failure's event carries why (what
        ``openstack server event show`` prints, as Nova's compute_detach_volume event does)."""
        actions = self.svc.actions
        failed = [o.volume_id for o in done if o.action == "fail"]
        if any(o.action in ("complete", "fail") for o in done):
            # Not by name: the volumes a server is built with settle its create action.
            actions.finish(s, inst.id, "Error" if failed else "Success", inst.host,
                           f"volume(s) {', '.join(failed)} could not be attached" if failed else None)
        kept = [o for o in done if o.action == "kept"]
        if any(o.action in ("detached", "kept") for o in done):
            message = "; ".join(f"volume {o.volume_id} could not be detached, it is still attached: {o.reason}"
                                for o in kept)
            actions.finish(s, inst.id, "Error" if kept else "Success", inst.host, message or None,
                           action="detach_volume")

    def release_all(self, inst: Instance, ctx: RequestContext) -> None:
        """The server is gone: every volume it had is available again, or deleted (delete_on_termination)."""
        if not inst.bdms:
            return
        volume_svc = self.svc.service(VOLUME)
        for b in list(inst.bdms):
            try:
                if b.state == ATTACHING:
                    volume_svc.attach_failed(b.attachment_id, f"instance {inst.id} was deleted")
                else:
                    if b.state == ATTACHED:
                        volume_svc.begin_detach(b.attachment_id)
                    volume_svc.detach_complete(b.attachment_id)
                if b.delete_on_termination:
                    volume_svc.delete_volume(ctx, b.volume_id)
            except errors.NotFound:
                pass
            except Exception:
                log.exception("releasing volume %s of deleted instance %s failed", b.volume_id, inst.id)
            with self.svc.session() as s:
                row = s.get(BlockDeviceMapping, b.id)
                if row is not None:
                    s.delete(row)
