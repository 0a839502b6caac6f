"""Choosing a host and holding its resources: the scheduler picks and claims in placement.

Resources asked of placement follow Nova: VCPU, MEMORY_MB and DISK_GB (root + ephemeral + swap; no root for a
volume-backed server, whose root disk is its volume)."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from tinystack.compute.models import Instance
from tinystack.compute.volumes import volume_backed
from tinystack.core import errors
from tinystack.placement.interface import PLACEMENT, PlacementAPI

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

log = logging.getLogger(__name__)


class NoValidHost(errors.BadRequest):
    def __init__(self, why: str = "") -> None:
        super().__init__("No valid host was found. " + why if why else "No valid host was found. ")


def resources(flavor: dict[str, Any], volume_backed: bool = False) -> dict[str, int]:
    root = 0 if volume_backed else int(flavor["root_gb"])
    disk = root + int(flavor.get("ephemeral_gb", 0)) + math.ceil(int(flavor.get("swap", 0)) / 1024)
    return {"VCPU": int(flavor["vcpus"]), "MEMORY_MB": int(flavor["memory_mb"]), "DISK_GB": disk}


class Placer:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self._sched: Any = None

    @property
    def placement(self) -> PlacementAPI:
        return self.svc.service(PLACEMENT)

    def place(self, inst: Instance, exclude: tuple[str, ...] = (), flavor: dict[str, Any] | None = None,
              forced_host: str | None = None) -> str:
        """A host for ``inst`` with its resources claimed in placement; NoValidHost when none fits."""
        want = resources(flavor or inst.flavor, volume_backed(inst))
        forced = forced_host or inst.doc.get("forced_host")
        return self._schedule(self._scheduler(), inst, want, exclude, forced, flavor)

    def _scheduler(self) -> Any:
        from tinystack.compute.hoststate import scheduler_for

        if self._sched is None:
            self._sched = scheduler_for(self.svc)
        return self._sched

    def _schedule(self, scheduler: Any, inst: Instance, want: dict[str, int], exclude: tuple[str, ...],
                  forced: str | None, flavor: dict[str, Any] | None) -> str:
        from tinystack.compute import scheduler as sched
        from tinystack.compute.hoststate import request_spec

        try:
            spec = request_spec(self.svc, inst, want, exclude, forced, flavor)
            selections = scheduler.select_destinations(spec, 1)
        except sched.NoValidHost as exc:
            raise NoValidHost(exc.reason) from None
        return str(selections[0].host)

    def release(self, instance_id: str) -> None:
        if self.svc.has("placement"):
            self.placement.release(instance_id)

    def move(self, inst: Instance, host: str, flavor: dict[str, Any]) -> bool:
        """Re-point the allocation to ``host`` with ``flavor``'s amounts (resize, migrate, evacuate)."""
        rp = self.placement.provider_uuid(host)
        if rp is None:
            return False
        return bool(self.placement.claim(inst.id, inst.project_id, inst.user_id, {rp: resources(flavor, volume_backed(inst))}))
