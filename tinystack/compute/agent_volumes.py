"""The compute agent's part of volumes on servers: hotplug the difference between the document's ``volumes``
and what a running guest has, grow the disks of volumes extended in use (``size_gb``), and say which volumes the
guest has for the status (docs/contracts.md)."""

from __future__ import annotations

import logging

from tinystack.compute.drivers.base import PAUSED, RUNNING, ComputeDriver, DriverError, Spec

log = logging.getLogger(__name__)


def desired(spec: Spec | None) -> list[str]:
    return [str(v["volume_id"]) for v in (spec or {}).get("volumes") or []]


async def converge(driver: ComputeDriver, iid: str, spec: Spec,
                   detach_attempts: int = 1) -> tuple[list[str], dict[str, str]]:
    """After power convergence. A running guest gets volumes hotplugged and unplugged; a stopped one needs
    nothing now (its next boot has exactly the document's volumes). A volume that fails is logged and left:
    the status then shows the guest without it (a failed attach) or still with it (a failed detach).

    Returns the volumes the guest has and, per volume the guest would not release after ``detach_attempts``
    tries (each the driver's own bounded wait), why: the status reports it so that the conductor gives the
    volume back (``in-use``) instead of leaving it ``detaching`` for ever.
    """
    state = (await driver.get_info(iid)).power_state
    if state != RUNNING:
        return await guest_volumes(driver, iid, spec), {}
    wanted = {str(v["volume_id"]): v for v in spec.get("volumes") or []}
    have = await driver.attached_volumes(iid)
    refused: dict[str, str] = {}
    for vid in have:
        if vid not in wanted:
            reason = await _detach(driver, iid, vid, detach_attempts)
            if reason is not None:
                refused[vid] = reason
    for vid, volume in wanted.items():
        if vid not in have:
            try:
                await driver.attach_volume(iid, volume)
            except DriverError as exc:
                log.warning("instance %s: attaching volume %s: %s", iid, vid, exc)
    have = await driver.attached_volumes(iid)
    for vid, volume in wanted.items():
        if vid in have and volume.get("size_gb"):
            try:
                await driver.extend_volume(iid, volume)
            except DriverError as exc:
                # Left for the next pass (a resync at the latest): the volume node may not serve the new size yet.
                log.warning("instance %s: growing volume %s to %s GiB: %s", iid, vid, volume["size_gb"], exc)
    return have, refused


async def _detach(driver: ComputeDriver, iid: str, vid: str, attempts: int) -> str | None:
    """Unplug ``vid``, asking up to ``attempts`` times; None once it is gone, else the last reason."""
    reason = ""
    for attempt in range(1, attempts + 1):
        try:
            await driver.detach_volume(iid, vid)
            return None
        except DriverError as exc:
            reason = str(exc) or type(exc).__name__
            if exc.permanent:
                break
            log.warning("instance %s: detaching volume %s (attempt %d of %d): %s", iid, vid, attempt, attempts, exc)
    log.warning("instance %s: giving up detaching volume %s: %s", iid, vid, reason)
    return reason


async def guest_volumes(driver: ComputeDriver, iid: str, spec: Spec | None) -> list[str]:
    """What the status reports: a live guest's volumes as the hypervisor has them (a paused guest changes
    only once it runs again); for a guest that is off, the ones its next boot will have."""
    info = await driver.get_info(iid)
    if info.power_state in (RUNNING, PAUSED):
        return await driver.attached_volumes(iid)
    return desired(spec) if info.exists else []
