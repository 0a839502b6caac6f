"""Server actions: each checks policy, lock and state (409 when wrong), records an instance action, changes
the desired state (a new generation) and lets the conductor publish it. Also os-instance-actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.compute import states
from tinystack.compute.models import Instance, InstanceAction, utcnow
from tinystack.compute.states import ACTIVE, ERROR, PAUSED_VM, RESCUED, STOPPED, SUSPENDED_VM
from tinystack.compute.volumes import volume_backed
from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

P = "os_compute_api"
SHELVED_OFFLOADED = states.SHELVED_OFFLOADED


class Actions:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    # --- bookkeeping ----------------------------------------------------------------------------

    def record(self, s: Session, ctx: RequestContext, instance_id: str, action: str, request_id: str,
               event: str | None = None, message: str | None = None) -> None:
        now = utcnow()
        events = [{"event": event or f"compute_{action}", "start_time": now.isoformat(), "finish_time": None,
                   "result": None, "traceback": None, "host": None}]
        s.add(InstanceAction(instance_id=instance_id, request_id=request_id, action=action,
                             project_id=ctx.project_id or "", user_id=ctx.user_id, message=message,
                             start_time=now, updated_at=now, events=events))

    @staticmethod
    def finish(s: Session, instance_id: str, result: str, host: str | None, message: str | None = None,
               action: str | None = None) -> None:
        """Close the open events of the newest action of an instance (Success or Error); with ``action``, of
        the newest action of that name (another action may have come since: a detach outlives a reboot)."""
        query = select(InstanceAction).where(InstanceAction.instance_id == instance_id)
        if action is not None:
            query = query.where(InstanceAction.action == action)
        found = s.scalar(query.order_by(InstanceAction.id.desc()).limit(1))
        if found is None:
            return
        now = utcnow().isoformat()
        events = []
        for ev in found.events:
            if ev.get("finish_time") is None:
                ev = {**ev, "finish_time": now, "result": result, "host": host,
                      "traceback": message if result == "Error" else None}
            events.append(ev)
        found.events = events
        if result == "Error" and message:
            found.message = message
        found.updated_at = utcnow()

    def list_actions(self, ctx: RequestContext, server_id: str) -> list[InstanceAction]:
        with self.svc.session() as s:
            inst = s.get(Instance, server_id)
            if inst is None or not self.svc.allowed(ctx, f"{P}:servers:show", {"project_id": inst.project_id}):
                raise errors.NotFound(f"Instance {server_id} could not be found.")
            return list(s.scalars(select(InstanceAction).where(InstanceAction.instance_id == server_id)
                                  .order_by(InstanceAction.id.desc())).all())

    def get_action(self, ctx: RequestContext, server_id: str, request_id: str) -> InstanceAction:
        for action in self.list_actions(ctx, server_id):
            if action.request_id == request_id:
                return action
        raise errors.NotFound(f"Action for request_id {request_id} on instance {server_id} not found")

    def check_lock(self, ctx: RequestContext, inst: Instance) -> None:
        # As Nova: a locked server refuses every non-admin action, its owner's too (whoever locked it).
        if inst.locked and not ctx.is_admin:
            raise errors.Conflict(f"Instance {inst.id} is locked")

    # --- the generic transition -----------------------------------------------------------------

    def transition(self, ctx: RequestContext, server_id: str, action: str, request_id: str, *,
                   vm_states: tuple[str, ...], task_state: str | None, target: str,
                   change: Callable[[Instance, dict[str, Any]], None] | None = None, rule: str | None = None,
                   task_states: tuple[str | None, ...] = (None,), publish: bool = True) -> Instance:
        """Check the instance is in one of ``vm_states`` with no task, apply ``change`` to a copy of its doc,
        bump the generation and publish; the agent's confirmation settles it in ``target``.

        The bump is a compare-and-swap that also expects the states checked here (Nova's
        ``expected_task_state``): when an agent report or another request moved the row meanwhile, the whole
        transaction is tried again on fresh state, whose checks answer 409 if the action no longer fits."""

        def attempt() -> Instance:
            with self.svc.session() as s:
                inst = self.svc.servers.find(s, ctx, server_id, f"{P}:servers:action")
                if rule is not None:
                    self.svc.enforce(ctx, rule, {"project_id": inst.project_id})
                self.check_lock(ctx, inst)
                if inst.vm_state not in vm_states or inst.task_state not in task_states:
                    raise errors.Conflict(f"Cannot '{action}' instance {server_id} while it is in vm_state "
                                          f"{inst.vm_state}" + (f", task_state {inst.task_state}"
                                                                if inst.task_state else ""))
                # First the swap (it takes the row for this transaction), then the change on top of it.
                desired.bump_or_lose(s, Instance, inst.id, inst.generation,
                                     {"task_state": task_state, "updated_at": utcnow()},
                                     guard={"vm_state": inst.vm_state, "task_state": inst.task_state})
                doc = dict(inst.doc)
                doc["target"] = target
                if change is not None:
                    change(inst, doc)
                inst.doc = doc
                self.record(s, ctx, inst.id, action, request_id)
                return inst

        inst = desired.retry(attempt, what=f"Instance {server_id}")
        if publish:
            self.svc.conductor.publish_soon(server_id)
        return inst

    # --- power ----------------------------------------------------------------------------------

    def stop(self, ctx: RequestContext, sid: str, rid: str) -> None:
        self.transition(ctx, sid, "stop", rid, vm_states=(ACTIVE, ERROR, RESCUED), task_state="powering-off",
                        target=STOPPED, change=lambda i, d: d.update(power="stopped"))

    def start(self, ctx: RequestContext, sid: str, rid: str) -> None:
        self.transition(ctx, sid, "start", rid, vm_states=(STOPPED,), task_state="powering-on", target=ACTIVE,
                        change=lambda i, d: d.update(power="running"))

    def reboot(self, ctx: RequestContext, sid: str, rid: str, hard: bool) -> None:
        def change(inst: Instance, doc: dict[str, Any]) -> None:
            doc["reboot"] = {"seq": int(doc.get("reboot", {}).get("seq", 0)) + 1, "hard": hard}
            doc["power"] = "running"

        self.transition(ctx, sid, "reboot", rid, vm_states=(ACTIVE, STOPPED, PAUSED_VM, SUSPENDED_VM, ERROR)
                        if hard else (ACTIVE,), task_state="rebooting_hard" if hard else "rebooting",
                        target=ACTIVE, change=change)

    def pause(self, ctx: RequestContext, sid: str, rid: str) -> None:
        self.transition(ctx, sid, "pause", rid, vm_states=(ACTIVE,), task_state="pausing", target=PAUSED_VM,
                        change=lambda i, d: d.update(power="paused"))

    def unpause(self, ctx: RequestContext, sid: str, rid: str) -> None:
        self.transition(ctx, sid, "unpause", rid, vm_states=(PAUSED_VM,), task_state="unpausing", target=ACTIVE,
                        change=lambda i, d: d.update(power="running"))

    def suspend(self, ctx: RequestContext, sid: str, rid: str) -> None:
        self.transition(ctx, sid, "suspend", rid, vm_states=(ACTIVE,), task_state="suspending",
                        target=SUSPENDED_VM, change=lambda i, d: d.update(power="suspended"))

    def resume(self, ctx: RequestContext, sid: str, rid: str) -> None:
        self.transition(ctx, sid, "resume", rid, vm_states=(SUSPENDED_VM,), task_state="resuming",
                        target=ACTIVE, change=lambda i, d: d.update(power="running"))

    def rescue(self, ctx: RequestContext, sid: str, rid: str, admin_pass: str | None,
               image_ref: str | None = None) -> str:
        """``image_ref``: what the rescue disk is made from (an image the caller may use, active), else the
        server's own image, as Nova does."""
        from tinystack.compute.servers import admin_password

        password = admin_pass or admin_password()
        if volume_backed(self.svc.servers.get(ctx, sid)):
            raise errors.BadRequest("Cannot rescue a volume-backed instance")
        rescue_image = self.svc.servers.image_info(ctx, image_ref) if image_ref else None

        def change(inst: Instance, doc: dict[str, Any]) -> None:
            doc.update(rescue=True, power="running", rescue_image=rescue_image)
            inst.admin_pass = password

        self.transition(ctx, sid, "rescue", rid, vm_states=(ACTIVE, STOPPED, ERROR), task_state="rescuing",
                        target=RESCUED, change=change)
        return password

    def unrescue(self, ctx: RequestContext, sid: str, rid: str) -> None:
        self.transition(ctx, sid, "unrescue", rid, vm_states=(RESCUED,), task_state="unrescuing", target=ACTIVE,
                        change=lambda i, d: d.update(rescue=False, power="running", rescue_image=None))

    def change_password(self, ctx: RequestContext, sid: str, rid: str, password: str) -> None:
        def change(inst: Instance, doc: dict[str, Any]) -> None:
            inst.admin_pass = password

        self.transition(ctx, sid, "changePassword", rid, vm_states=(ACTIVE,), task_state="updating_password",
                        target=ACTIVE, change=change)

    # --- lock, reset ----------------------------------------------------------------------------

    def lock(self, ctx: RequestContext, sid: str, rid: str, reason: str | None) -> None:
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:servers:action")
            inst.locked = True
            inst.locked_by = "admin" if ctx.is_admin and ctx.project_id != inst.project_id else "owner"
            inst.locked_reason = reason
            inst.updated_at = utcnow()
            self.record(s, ctx, sid, "lock", rid)
            self.finish(s, sid, "Success", inst.host)

    def unlock(self, ctx: RequestContext, sid: str, rid: str) -> None:
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:servers:action")
            if inst.locked and inst.locked_by == "admin" and not ctx.is_admin:
                raise errors.Forbidden("Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override"
                                       " to be performed.")
            inst.locked, inst.locked_by, inst.locked_reason = False, None, None
            inst.updated_at = utcnow()
            self.record(s, ctx, sid, "unlock", rid)
            self.finish(s, sid, "Success", inst.host)

    def reset_state(self, ctx: RequestContext, sid: str, rid: str, state: str) -> None:
        self.svc.enforce(ctx, f"{P}:os-admin-actions:reset_state")
        if state not in ("active", "error"):
            raise errors.BadRequest("Invalid input for field/attribute state; must be 'active' or 'error'.")
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid)
            inst.vm_state = state
            inst.task_state = None
            inst.updated_at = utcnow()
            self.record(s, ctx, sid, "resetState", rid)
            self.finish(s, sid, "Success", inst.host)

    def reset_network(self, ctx: RequestContext, sid: str, rid: str) -> None:
        self.svc.enforce(ctx, f"{P}:os-admin-actions:reset_state")
        self.svc.conductor.publish_soon(sid)
