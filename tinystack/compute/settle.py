"""Settling an agent's report into Nova's states: the vm_state and task_state an action ends in, decided by the
conductor, not the agent; and the migration record's status that goes with it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tinystack.compute.actions import Actions
from tinystack.compute.models import Instance, Migration, utcnow
from tinystack.compute.states import ACTIVE, ERROR, RESIZED, STOPPED


def settle(s: Session, inst: Instance, st: dict[str, Any], observed: int) -> str | None:
    """Apply one agent report; returns what the conductor must do next (``deleted``, ``offload``,
    ``migrated``) or None. The conductor, not the agent, decides the vm_state an action ends in."""
    vm = st.get("vm_state")
    if observed < inst.generation:
        return None  # progress on an older desired state: only power_state/console were taken
    if vm == "deleted":
        return "deleted" if inst.task_state == "deleting" else None
    if inst.task_state == "deleting":
        return None
    if vm == "error" or st.get("fault"):
        fault = st.get("fault") or {"message": "the compute agent reported an error", "code": 500}
        inst.vm_state, inst.task_state = ERROR, None
        inst.fault = {"message": str(fault.get("message"))[:255], "code": int(fault.get("code") or 500),
                      "details": str(fault.get("message")), "created": utcnow().isoformat()}
        Actions.finish(s, inst.id, "Error", inst.host, inst.fault["message"])
        return None
    task = inst.task_state
    if task is None:
        # A guest that stopped by itself (shutdown inside the guest): Nova's power sync makes it SHUTOFF.
        # A report made while the agent is still working on it (task_state set, e.g. powering the guest
        # back on after the host restarted) is progress, not a guest that shut itself down.
        if inst.vm_state == ACTIVE and vm == "stopped" and not st.get("task_state"):
            inst.vm_state = STOPPED
            inst.doc = {**inst.doc, "power": "stopped", "target": STOPPED}
        return None
    target = inst.doc.get("target", ACTIVE)
    migration = inst.doc.get("migration")
    if task == "migrating":
        return None  # a live migration settles on the agents' migration reports (livemigration.py)
    if task == "shelving":
        return "offload"
    inst.vm_state, inst.task_state = target, None
    if target != ERROR:
        inst.fault = None
    if target == ACTIVE and inst.launched_at is None:
        inst.launched_at = utcnow()
    if migration and migration.get("kind") != "live":
        if not migration.get("revert"):  # a revert's record already says "reverted"
            set_migration_status(s, inst, "finished" if target == RESIZED else "completed")
        if target != RESIZED:
            inst.doc = {k: v for k, v in inst.doc.items() if k != "migration"}
    Actions.finish(s, inst.id, "Success", inst.host)
    return None


def set_migration_status(s: Session, inst: Instance, status: str) -> None:
    mig_id = (inst.doc.get("migration") or {}).get("id")
    row = s.get(Migration, mig_id) if mig_id else None
    if row is not None:
        row.status = status
        row.updated_at = utcnow()
