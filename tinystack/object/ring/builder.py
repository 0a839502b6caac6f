"""The write side: a ring builder that keeps devices and assignments between rebalances (``<name>.builder``)."""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from tinystack.object.ring import fileformat, report, targets
from tinystack.object.ring.device import Device
from tinystack.object.ring.gather import gather
from tinystack.object.ring.place import NONE, place
from tinystack.object.ring.polish import polish
from tinystack.object.ring.ring import Ring

MAX_DEVICES = NONE  # ids are 16-bit, 0xFFFF marks an empty slot
_DEV_FIELDS = {f.name for f in fields(Device)}


class RingBuilderError(ValueError):
    """A request the builder refuses (bad parameters, unknown device, nothing to build with)."""


class RingBuilder:
    """Devices, weights and replica2part2dev; ``rebalance`` moves as few partitions as the new weights allow."""

    def __init__(self, part_power: int, replicas: float, min_part_hours: int) -> None:
        if not 1 <= int(part_power) <= 24:
            raise RingBuilderError(f"part power must be 1..24, not {part_power}")
        self.part_power = int(part_power)
        self.replicas = self._check_replicas(replicas)
        self.min_part_hours = self._check_hours(min_part_hours)
        self.overload = 0.0
        self.devs: list[Device | None] = []
        self.removing: set[int] = set()
        self.version = 0
        self.a2d: np.ndarray | None = None  # replica rows x partitions, uint16 device ids
        self.last_moved = np.zeros(self.parts, dtype=np.uint32)  # unix seconds; 0 = never
        self.changed = False

    # -- parameters -------------------------------------------------------------------------------------------------

    @property
    def parts(self) -> int:
        return 1 << self.part_power

    @staticmethod
    def _check_replicas(replicas: float) -> float:
        try:
            r = float(replicas)
        except (TypeError, ValueError):
            raise RingBuilderError(f"replicas must be a number, not {replicas!r}") from None
        if not 1 <= r <= 64 or r != r:
            raise RingBuilderError(f"replicas must be between 1 and 64, not {replicas}")
        return r

    @staticmethod
    def _check_hours(hours: int) -> int:
        h = int(hours)
        if h < 0:
            raise RingBuilderError("min_part_hours must be >= 0")
        return h

    def set_replicas(self, replicas: float) -> None:
        self.replicas = self._check_replicas(replicas)
        self.changed = True

    def set_min_part_hours(self, hours: int) -> None:
        self.min_part_hours = self._check_hours(hours)

    def set_overload(self, overload: float) -> None:
        if not 0 <= float(overload) <= 100:
            raise RingBuilderError("overload must be a fraction >= 0 (0.1 is 10%)")
        self.overload = float(overload)
        self.changed = True

    def pretend_min_part_hours_passed(self) -> None:
        self.last_moved[:] = 0

    def row_lengths(self) -> list[int]:
        whole, frac = math.floor(self.replicas), self.replicas - math.floor(self.replicas)
        rows = [self.parts] * whole
        tail = int(self.parts * frac)
        if tail:
            rows.append(tail)
        return rows

    # -- devices ----------------------------------------------------------------------------------------------------

    def add_dev(self, dev: Mapping[str, Any] | Device) -> int:
        d = dev.to_dict() if isinstance(dev, Device) else dict(dev)
        unknown = set(d) - _DEV_FIELDS
        if unknown:
            raise RingBuilderError(f"unknown device fields: {', '.join(sorted(unknown))}")
        dev_id = d.get("id")
        if dev_id is None:
            dev_id = next((i for i, x in enumerate(self.devs) if x is None and i not in self.removing), len(self.devs))
        dev_id = int(dev_id)
        if not 0 <= dev_id < MAX_DEVICES:
            raise RingBuilderError(f"device id {dev_id} out of range")
        if dev_id < len(self.devs) and (self.devs[dev_id] is not None or dev_id in self.removing):
            raise RingBuilderError(f"device id {dev_id} is already in use")
        try:
            new = Device.from_dict(dict(d, id=dev_id))
        except (KeyError, TypeError, ValueError) as exc:
            raise RingBuilderError(f"invalid device: {exc}") from None
        if new.weight < 0 or new.weight != new.weight or new.region < 0 or new.zone < 0:
            raise RingBuilderError("weight, region and zone must be >= 0")
        for other in self.devs:
            if other is not None and (other.ip, other.port, other.device) == (new.ip, new.port, new.device) \
                    and other.id not in self.removing:
                raise RingBuilderError(f"device {new.ip}:{new.port}/{new.device} already exists as d{other.id}")
        while len(self.devs) <= dev_id:
            self.devs.append(None)
        self.devs[dev_id] = new
        self.changed = True
        return dev_id

    def _dev(self, dev_id: int) -> Device:
        if not 0 <= dev_id < len(self.devs) or self.devs[dev_id] is None or dev_id in self.removing:
            raise RingBuilderError(f"no device d{dev_id}")
        dev = self.devs[dev_id]
        assert dev is not None
        return dev

    def set_weight(self, dev_id: int, weight: float) -> None:
        w = float(weight)
        if w < 0 or w != w:
            raise RingBuilderError("weight must be >= 0")
        self.devs[dev_id] = self._dev(dev_id).with_weight(w)
        self.changed = True

    def set_dev_info(self, dev_id: int, **changes: Any) -> None:
        cur = self._dev(dev_id).to_dict()
        unknown = set(changes) - (_DEV_FIELDS - {"id", "weight"})
        if unknown:
            raise RingBuilderError(f"cannot change {', '.join(sorted(unknown))}")
        self.devs[dev_id] = Device.from_dict(dict(cur, **changes))

    def remove_dev(self, dev_id: int) -> None:
        """Mark for removal: the next rebalance moves its partitions away and then forgets it."""
        self._dev(dev_id)
        self.removing.add(dev_id)
        self.changed = True

    def active_mask(self) -> np.ndarray:
        return np.array([d is not None and d.weight > 0 and d.id not in self.removing for d in self.devs], dtype=bool)

    # -- rebalance --------------------------------------------------------------------------------------------------

    def _resized(self) -> tuple[np.ndarray, np.ndarray]:
        lengths = self.row_lengths()
        a2d = np.full((len(lengths), self.parts), NONE, dtype=np.uint16)
        if self.a2d is not None:
            keep = min(len(lengths), self.a2d.shape[0])
            a2d[:keep] = self.a2d[:keep]
        valid = np.arange(self.parts)[None, :] < np.array(lengths)[:, None]
        return a2d, valid

    def compute_targets(self) -> targets.Targets:
        active = self.active_mask()
        return targets.compute(self.devs, active, self.replicas, sum(self.row_lengths()), self.overload)

    def rebalance(self, seed: int | None = None, now: float | None = None) -> tuple[int, float, list[Device]]:
        """Reassign partitions; returns (partitions moved, balance %, devices removed for good)."""
        active = self.active_mask()
        if not active.any():
            raise RingBuilderError("no devices with weight > 0 to rebalance onto")
        now_s = int(time.time() if now is None else now)
        rng = np.random.default_rng(seed)
        tgt = self.compute_targets()
        a2d, valid = self._resized()
        before = a2d.copy()
        locked = (self.last_moved > 0) & (self.last_moved.astype(np.int64) + self.min_part_hours * 3600 > now_s)
        gather(a2d, valid, tgt, active, locked, rng)
        place(a2d, valid, tgt, active, rng)
        polish(a2d, before, tgt, active)
        moved = (a2d != before).any(axis=0)
        if self.a2d is not None and self.a2d.shape[0] > a2d.shape[0]:
            moved |= (self.a2d[a2d.shape[0]:] != NONE).any(axis=0)
        self.last_moved[moved] = now_s
        self.a2d = a2d
        removed = []
        for dev_id in sorted(self.removing):
            dev = self.devs[dev_id]
            if dev is not None:
                removed.append(dev)
            self.devs[dev_id] = None
        self.removing.clear()
        while self.devs and self.devs[-1] is None:
            self.devs.pop()
        self.version += 1
        self.changed = False
        return int(moved.sum()), report.balance(self), removed

    # -- reports ----------------------------------------------------------------------------------------------------

    def get_balance(self) -> float:
        return report.balance(self)

    def dispersion(self, with_tiers: bool = False) -> report.Dispersion:
        return report.dispersion(self, with_tiers)

    def validate(self) -> None:
        report.validate(self)

    # -- rings and files --------------------------------------------------------------------------------------------

    def get_ring(self, prefix: str | bytes = b"", suffix: str | bytes = b"") -> Ring:
        if self.a2d is None:
            raise RingBuilderError("the builder has never been rebalanced")
        rows = []
        for r, n in enumerate(self.row_lengths()):
            row = array("H")
            row.frombytes(np.ascontiguousarray(self.a2d[r, :n]).tobytes())
            rows.append(row)
        devs = [None if d is None or d.id in self.removing else d for d in self.devs]
        return Ring(self.part_power, self.replicas, devs, rows, prefix, suffix, self.version)

    def write_ring(self, path: str | Path, prefix: str | bytes = b"", suffix: str | bytes = b"") -> None:
        self.get_ring(prefix, suffix).save(path)

    def save(self, path: str | Path) -> None:
        header = {"part_power": self.part_power, "replicas": self.replicas, "min_part_hours": self.min_part_hours,
                  "overload": self.overload, "version": self.version, "removing": sorted(self.removing),
                  "changed": self.changed,
                  "devs": [d.to_dict() if d is not None else None for d in self.devs],
                  "rows": 0 if self.a2d is None else int(self.a2d.shape[0])}
        arrays = [("last_moved", "uint32", self.last_moved.astype("<u4").tobytes())]
        if self.a2d is not None:
            arrays += [(f"r{i}", "uint16", row.astype("<u2").tobytes()) for i, row in enumerate(self.a2d)]
        fileformat.write(path, "builder", header, arrays)

    @classmethod
    def load(cls, path: str | Path) -> RingBuilder:
        header, arrays = fileformat.read(path, "builder")
        try:
            b = cls(int(header["part_power"]), float(header["replicas"]), int(header["min_part_hours"]))
            b.overload = float(header.get("overload", 0.0))
            b.version = int(header.get("version", 0))
            b.removing = {int(i) for i in header.get("removing", [])}
            b.changed = bool(header.get("changed", False))
            b.devs = [Device.from_dict(d) if d is not None else None for d in header["devs"]]
            b.last_moved = np.frombuffer(arrays["last_moved"], dtype="<u4").astype(np.uint32)
            n_rows = int(header.get("rows", 0))
            if n_rows:
                b.a2d = np.stack([np.frombuffer(arrays[f"r{i}"], dtype="<u2") for i in range(n_rows)]).astype(np.uint16)
        except (KeyError, TypeError, ValueError, RingBuilderError) as exc:
            raise fileformat.RingFileError(f"{path}: damaged builder ({exc})") from None
        if len(b.last_moved) != b.parts or (b.a2d is not None and b.a2d.shape[1] != b.parts):
            raise fileformat.RingFileError(f"{path}: arrays do not match the part power")
        return b
