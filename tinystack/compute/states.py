"""Nova's instance states: vm_state, task_state, power_state integers, and the API status they map to."""

from __future__ import annotations

# power_state integers (nova/compute/power_state.py)
NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED = 0, 1, 3, 4, 6, 7
POWER_NAMES = {NOSTATE: "pending", RUNNING: "running", PAUSED: "paused", SHUTDOWN: "shutdown",
               CRASHED: "crashed", SUSPENDED: "suspended"}

ACTIVE, BUILDING, PAUSED_VM, SUSPENDED_VM, STOPPED = "active", "building", "paused", "suspended", "stopped"
RESCUED, RESIZED, DELETED, ERROR = "rescued", "resized", "deleted", "error"
SHELVED, SHELVED_OFFLOADED, SOFT_DELETED = "shelved", "shelved_offloaded", "soft-delete"

_RESIZE_TASKS = ("resize_prep", "resize_migrating", "resize_migrated", "resize_finish")
_REBUILD_TASKS = ("rebuilding", "rebuild_block_device_mapping", "rebuild_spawning")

# (vm_state, task_state) -> status; task None is the default for the vm_state (nova/api/openstack/common.py).
_STATUS: dict[str, dict[str | None, str]] = {
    ACTIVE: {None: "ACTIVE", "rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
             "rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT",
             "reboot_started_hard": "HARD_REBOOT", "updating_password": "PASSWORD",
             "migrating": "MIGRATING", **{t: "REBUILD" for t in _REBUILD_TASKS},
             **{t: "RESIZE" for t in _RESIZE_TASKS}},
    BUILDING: {None: "BUILD"},
    STOPPED: {None: "SHUTOFF", **{t: "RESIZE" for t in _RESIZE_TASKS}, **{t: "REBUILD" for t in _REBUILD_TASKS}},
    RESIZED: {None: "VERIFY_RESIZE", "resize_reverting": "REVERT_RESIZE"},
    PAUSED_VM: {None: "PAUSED", "migrating": "MIGRATING"},
    SUSPENDED_VM: {None: "SUSPENDED"},
    RESCUED: {None: "RESCUE"},
    ERROR: {None: "ERROR", **{t: "REBUILD" for t in _REBUILD_TASKS}},
    DELETED: {None: "DELETED"},
    SOFT_DELETED: {None: "SOFT_DELETED"},
    SHELVED: {None: "SHELVED"},
    SHELVED_OFFLOADED: {None: "SHELVED_OFFLOADED"},
}


def status(vm_state: str, task_state: str | None) -> str:
    by_task = _STATUS.get(vm_state, {None: "UNKNOWN"})
    return by_task.get(task_state) or by_task[None]


def vm_states_for(status_name: str) -> list[str]:
    """The vm_states whose default status is ``status_name`` (the list filter ``?status=``)."""
    return [vm for vm, m in _STATUS.items() if m[None] == status_name.upper()]


def tasks_for(status_name: str) -> list[tuple[str, str | None]]:
    """All (vm_state, task_state) pairs that show as ``status_name``."""
    return [(vm, t) for vm, m in _STATUS.items() for t, s in m.items() if s == status_name.upper()]


# The desired guest power for each settled vm_state; the instance doc's "power" field.
POWER_FOR_VM = {ACTIVE: "running", STOPPED: "stopped", PAUSED_VM: "paused", SUSPENDED_VM: "suspended",
                RESCUED: "running", RESIZED: "running", SHELVED: "stopped", ERROR: "running", BUILDING: "running"}
