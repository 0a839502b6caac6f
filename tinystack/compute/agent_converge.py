"""How the compute agent brings one guest to its document: disks (rebuild, resize), rescue, snapshot,
reboot, power, then volumes, each step recorded so that none is done twice."""

from __future__ import annotations

from typing import Any

from tinystack.compute import agent_volumes
from tinystack.compute.agent_records import Record, Records, flavor_key, fresh_record, rebuild_seq
from tinystack.compute.agent_status import VM_FOR_POWER, Reporting
from tinystack.compute.drivers.base import CRASHED, NOSTATE, PAUSED, RUNNING, SHUTDOWN, SUSPENDED, DriverError, Spec


class Converge(Reporting):
    """Mixin of ``ComputeAgent``, which sets these attributes."""

    records: Records
    power_off_timeout: float
    volume_detach_attempts: int

    async def _converge(self, iid: str, gen: int, spec: Spec, record: Record | None) -> Record:
        d = self.driver
        image = spec.get("image") or {}
        info = await d.get_info(iid)
        if not info.exists:
            await self._publish(iid, 0 if record is None else record.realized_gen, "building", NOSTATE, "spawning", None)
            await d.create(spec)
            record = fresh_record(spec)
            self.records.save(iid, record)
        elif record is None:
            # Disks without a record (a record lost, the process killed between making the disks and saving the
            # record, or a guest from an older agent): adopt as it is. Only a running guest counts as having
            # realised the power the spec asks for; one that is off was never seen running, so it is started
            # rather than taken for a guest that shut itself down.
            running = info.power_state in (RUNNING, PAUSED)
            record = Record(image_id=image.get("id"), kernel_id=spec.get("kernel_image_id"),
                            ramdisk_id=spec.get("ramdisk_image_id"), flavor=flavor_key(spec.get("flavor") or {}),
                            reboot_seq=int((spec.get("reboot") or {}).get("seq") or 0),
                            snapshot_seq=int((spec.get("snapshot") or {}).get("seq") or 0),
                            rebuild_seq=rebuild_seq(spec), power=spec.get("power") if running else None,
                            realized_gen=gen)
            self.records.save(iid, record)
        record.failed_gen, record.fault = None, None

        async def step(task: str) -> None:
            now = await d.get_info(iid)
            await self._publish(iid, record.realized_gen, VM_FOR_POWER.get(now.power_state, "error"),
                                now.power_state, task, None)

        # Rebuild (a new rebuild seq or image) and resize (new flavor) rewrite disks: the guest must be off.
        flavor = flavor_key(spec.get("flavor") or {})
        images = (image.get("id"), spec.get("kernel_image_id"), spec.get("ramdisk_image_id"))
        rebuild = rebuild_seq(spec) > record.rebuild_seq or images[0] != record.image_id
        if rebuild or images != (record.image_id, record.kernel_id, record.ramdisk_id) or flavor != record.flavor:
            await step("rebuilding" if rebuild else "resize_migrating")
            await d.power_off(iid, self.power_off_timeout)
            await d.rebuild_disks(spec, recreate_root=rebuild)
            record.image_id, record.kernel_id, record.ramdisk_id = images
            record.flavor, record.rebuild_seq = flavor, max(record.rebuild_seq, rebuild_seq(spec))
            self.records.save(iid, record)

        rescue = bool(spec.get("rescue"))
        if rescue != record.rescue:
            await step("rescuing" if rescue else "unrescuing")
            await d.power_off(iid, self.power_off_timeout)
            if not rescue:
                await d.unrescue(iid)
            record.rescue = rescue
            self.records.save(iid, record)

        snapshot = spec.get("snapshot") or {}
        if snapshot.get("image_id") and int(snapshot.get("seq") or 0) > record.snapshot_seq:
            await step("image_uploading")
            await d.snapshot(iid, snapshot["image_id"])
            record.snapshot_seq = int(snapshot["seq"])
            self.records.save(iid, record)

        reboot = spec.get("reboot") or {}
        if int(reboot.get("seq") or 0) > record.reboot_seq:
            hard = bool(reboot.get("hard"))
            if (await d.get_info(iid)).power_state in (RUNNING, PAUSED):
                await step("rebooting_hard" if hard else "rebooting")
                await d.reboot(spec, hard)
            record.reboot_seq = int(reboot["seq"])
            self.records.save(iid, record)

        await self._converge_power(iid, gen, spec, record, step)
        record.volumes, refused = await agent_volumes.converge(d, iid, spec, self.volume_detach_attempts)
        self._detach_refused[iid] = refused
        record.power, record.realized_gen, record.host_stopped = spec.get("power"), gen, False
        self.records.save(iid, record)
        return record

    async def _converge_power(self, iid: str, gen: int, spec: Spec, record: Record, step: Any) -> None:
        d = self.driver
        desired = spec.get("power") or "running"
        state = (await d.get_info(iid)).power_state
        off = state in (SHUTDOWN, NOSTATE, CRASHED)
        if (off and record.power in ("running", "paused") and record.realized_gen == gen
                and not record.host_stopped):
            # The guest shut itself down: like Nova, it stays off until the next request says otherwise.
            record.guest_stopped_gen = gen
        if desired == "running":
            if state == SUSPENDED:
                await step("resuming")
                await d.power_on(spec)
            elif state == PAUSED:
                await step("unpausing")
                await d.unpause(iid)
            elif state != RUNNING and record.guest_stopped_gen != gen:
                await step("powering-on")
                await d.power_on(spec)
        elif desired == "stopped":
            if not off or state == CRASHED:
                await step("powering-off")
                await d.power_off(iid, self.power_off_timeout)
        elif desired == "paused":
            if state not in (RUNNING, PAUSED):
                await step("powering-on")
                await d.power_on(spec)
            if (await d.get_info(iid)).power_state == RUNNING:
                await step("pausing")
                await d.pause(iid)
        elif desired == "suspended":
            if state == SHUTDOWN:
                await step("powering-on")
                await d.power_on(spec)
            if (await d.get_info(iid)).power_state in (RUNNING, PAUSED):
                await step("suspending")
                await d.suspend(iid)
        else:
            raise DriverError(f"unknown power {desired!r}", permanent=True)
