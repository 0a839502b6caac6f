"""What a builder's ring looks like: balance, dispersion and a consistency check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tinystack.object.ring.gather import per_row_counts
from tinystack.object.ring.place import NONE, lut
from tinystack.object.ring.targets import part_dev_caps

if TYPE_CHECKING:
    from tinystack.object.ring.builder import RingBuilder


class RingValidationError(ValueError):
    """The builder's assignments break a rule every ring must keep."""


def dev_parts(b: RingBuilder) -> np.ndarray:
    """Replica slots held by each device id."""
    if b.a2d is None:
        return np.zeros(len(b.devs), dtype=np.int64)
    flat = b.a2d[b.a2d != NONE]
    return np.bincount(flat, minlength=len(b.devs))[:len(b.devs)]


def dev_balances(b: RingBuilder) -> np.ndarray:
    """Per device: 100 x (held - wanted) / wanted, where wanted follows the weights alone (Swift's definition)."""
    counts = dev_parts(b).astype(np.float64)
    weights = np.array([d.weight if d is not None and d.id not in b.removing else 0.0 for d in b.devs])
    out = np.zeros(len(b.devs))
    if weights.sum() <= 0:
        return out
    wanted = weights * (sum(b.row_lengths()) / weights.sum())
    has = wanted > 0
    out[has] = 100.0 * (counts[has] - wanted[has]) / wanted[has]
    out[~has & (counts > 0)] = 999.99  # a zero-weight device still holding partitions
    return out


def balance(b: RingBuilder) -> float:
    """The worst device balance, in percent (0 is perfect)."""
    bal = dev_balances(b)
    return float(np.abs(bal).max()) if len(bal) else 0.0


@dataclass
class Dispersion:
    """Partitions whose replicas crowd a tier beyond the even spread, overall and per tier."""

    percent: float
    parts_at_risk: int
    # tier name ("r1", "r1z2", "r1z2-ip:port/dev") -> (max replicas allowed, histogram of replica counts)
    tiers: dict[str, tuple[int, list[int]]] = field(default_factory=dict)


def dispersion(b: RingBuilder, with_tiers: bool = False) -> Dispersion:
    if b.a2d is None:
        return Dispersion(0.0, 0)
    t = b.compute_targets()
    a2d = b.a2d
    at_risk = np.zeros(b.parts, dtype=bool)
    tiers: dict[str, tuple[int, list[int]]] = {}
    n_rows = a2d.shape[0]
    devs = np.where(a2d == NONE, -1, a2d.astype(np.int64))
    levels = [(lut(t.dev_region)[a2d], t.dispersed_max_region, [f"r{r}" for r in t.region_keys]),
              (lut(t.dev_zone)[a2d], t.dispersed_max_zone, [f"r{r}z{z}" for r, z in t.zone_keys])]
    caps = part_dev_caps(a2d != NONE, int(b.active_mask().sum()))
    at_risk |= ((per_row_counts(devs) > caps[None, :]) & (devs >= 0)).any(axis=0)
    for keys, limit, names in levels:
        # How many replicas of its partition share each slot's tier; a slot over its tier's limit puts it at risk.
        counts = per_row_counts(keys)
        for r in range(n_rows):
            at_risk |= (keys[r] >= 0) & (counts[r] > limit[np.clip(keys[r], 0, None)])
        if with_tiers:
            # A partition with c replicas in tier k shows up as c slots of (k, c).
            held = keys >= 0
            pairs = np.bincount(keys[held] * (n_rows + 1) + counts[held], minlength=len(names) * (n_rows + 1))
            table = pairs.reshape(len(names), n_rows + 1) // np.maximum(np.arange(n_rows + 1), 1)
            table[:, 0] = b.parts - table[:, 1:].sum(axis=1)
            for k, name in enumerate(names):
                tiers[name] = (int(limit[k]), table[k].tolist())
    parts = int(at_risk.sum())
    return Dispersion(100.0 * parts / b.parts, parts, tiers)


def validate(b: RingBuilder) -> None:
    """Raise RingValidationError unless every slot is assigned to a known device and no partition repeats one."""
    if b.a2d is None:
        raise RingValidationError("the builder has never been rebalanced")
    lengths = b.row_lengths()
    if b.a2d.shape != (len(lengths), b.parts):
        raise RingValidationError("replica2part2dev does not match the replica count; rebalance first")
    known = np.array([d is not None for d in b.devs] + [False] * (NONE + 1 - len(b.devs)), dtype=bool)
    for r, n in enumerate(lengths):
        row = b.a2d[r, :n]
        if (row == NONE).any():
            raise RingValidationError(f"replica {r}: {int((row == NONE).sum())} partitions have no device")
        if not known[row].all():
            raise RingValidationError(f"replica {r}: partitions assigned to unknown devices")
    caps = part_dev_caps(b.a2d != NONE, int(b.active_mask().sum()))
    devs = np.where(b.a2d == NONE, -1, b.a2d.astype(np.int64))
    crowded = ((per_row_counts(devs) > caps[None, :]) & (devs >= 0)).any(axis=0)
    if crowded.any():
        raise RingValidationError(f"{int(crowded.sum())} partitions have two replicas on one device although "
                                  f"there are devices enough (e.g. partition {int(np.flatnonzero(crowded)[0])})")
    for dev_id, dev in enumerate(b.devs):
        if dev is not None and dev.id != dev_id:
            raise RingValidationError(f"device at index {dev_id} says it is d{dev.id}")
