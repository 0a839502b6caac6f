"""How many replicas each region, zone and device should hold: by weight, by even spread, and the overload blend.

Replica counts are per partition (a zone with target 1.5 holds, on average, one and a half replicas of every
partition). The weighted share follows the device weights; the dispersed share spreads replicas as evenly as the
tiers allow; ``overload`` lets a tier take up to that fraction more than its weight to get closer to the spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinystack.object.ring.device import Device

_EPS = 1e-9


def waterfill(total: float, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``weights``, no item above its cap (the excess goes to the others)."""
    out = np.zeros(len(weights), dtype=np.float64)
    free = (weights > 0) & (caps > 0)
    left = float(total)
    while left > _EPS and free.any():
        share = left * weights * free / weights[free].sum()
        over = free & (out + share > caps + _EPS)
        if not over.any():
            out += share
            break
        out[over] = caps[over]
        free &= ~over
        left = total - out.sum()
    return out


def _blend(weighted: np.ndarray, dispersed: np.ndarray, overload: float) -> np.ndarray:
    """Move the weighted split toward the dispersed one, each tier gaining at most ``overload`` x its weight."""
    if overload <= 0:
        return weighted.copy()
    raise_by = np.minimum(np.clip(dispersed - weighted, 0, None), weighted * overload)
    surplus = np.clip(weighted - dispersed, 0, None)
    want, have = raise_by.sum(), surplus.sum()
    if want <= _EPS or have <= _EPS:
        return weighted.copy()
    moved = min(want, have)
    return weighted + raise_by * (moved / want) - surplus * (moved / have)


@dataclass
class Targets:
    """Per-device and per-tier targets for one rebalance (arrays indexed by device id / zone / region index)."""

    dev_replicas: np.ndarray      # float, target replicas of each partition on each device
    wanted_parts: np.ndarray      # float, target partition count of each device
    target_parts: np.ndarray      # int, wanted_parts rounded so that they sum to the slot count
    dev_zone: np.ndarray          # zone index of each device (-1: not active)
    dev_region: np.ndarray        # region index of each device (-1: not active)
    zone_region: np.ndarray       # region index of each zone
    zone_keys: list[tuple[int, int]]
    region_keys: list[int]
    max_zone: np.ndarray          # replicas of a partition a zone may hold
    max_region: np.ndarray
    max_dev: int
    dispersed_max_zone: np.ndarray  # the even-spread limits the dispersion figure is measured against
    dispersed_max_region: np.ndarray
    zone_capacity: np.ndarray     # devices in the zone x max_dev


def part_dev_caps(valid: np.ndarray, n_active: int) -> np.ndarray:
    """How many replicas of each partition one device may hold: 1, unless the partition has more than devices."""
    rows = valid.sum(axis=0)
    return np.maximum(1, -(-rows // max(n_active, 1))).astype(np.int16)


def _largest_remainder(values: np.ndarray, total: int) -> np.ndarray:
    base = np.floor(values + _EPS).astype(np.int64)
    short = int(total - base.sum())
    if short > 0:
        order = np.argsort(-(values - base), kind="stable")
        base[order[:short]] += 1
    elif short < 0:
        order = np.argsort(values - base, kind="stable")
        base[order[:-short]] -= 1
    return base


def compute(devs: list[Device | None], active: np.ndarray, replicas: float, slots: int,
            overload: float) -> Targets:
    """Targets for the devices whose ``active`` flag is set (weight > 0, not being removed)."""
    n_ids = len(devs)
    ids = np.flatnonzero(active)
    weights = np.zeros(n_ids)
    for i in ids:
        weights[i] = devs[i].weight  # type: ignore[union-attr]
    region_keys = sorted({devs[i].region for i in ids})  # type: ignore[union-attr]
    zone_keys = sorted({(devs[i].region, devs[i].zone) for i in ids})  # type: ignore[union-attr]
    rindex = {r: k for k, r in enumerate(region_keys)}
    zindex = {z: k for k, z in enumerate(zone_keys)}
    dev_zone = np.full(n_ids, -1, dtype=np.int64)
    dev_region = np.full(n_ids, -1, dtype=np.int64)
    for i in ids:
        d = devs[i]
        assert d is not None
        dev_zone[i] = zindex[(d.region, d.zone)]
        dev_region[i] = rindex[d.region]
    zone_region = np.array([rindex[r] for r, _ in zone_keys], dtype=np.int64)
    n_zones, n_regions = len(zone_keys), len(region_keys)
    dev_cap = max(1.0, replicas / len(ids)) if len(ids) else 1.0
    max_dev = math.ceil(dev_cap - _EPS)
    zone_capacity = np.bincount(dev_zone[ids], minlength=n_zones).astype(np.float64) * dev_cap
    region_capacity = np.bincount(zone_region, weights=zone_capacity, minlength=n_regions)

    weighted_dev = waterfill(replicas, weights, np.where(active, dev_cap, 0.0))
    weighted_zone = np.bincount(dev_zone[ids], weights=weighted_dev[ids], minlength=n_zones)
    weighted_region = np.bincount(zone_region, weights=weighted_zone, minlength=n_regions)

    dispersed_region = waterfill(replicas, np.ones(n_regions), region_capacity)
    target_region = _blend(weighted_region, dispersed_region, overload)
    target_zone = np.zeros(n_zones)
    dispersed_zone = np.zeros(n_zones)
    for r in range(n_regions):
        zs = np.flatnonzero(zone_region == r)
        dispersed_zone[zs] = waterfill(dispersed_region[r], np.ones(len(zs)), zone_capacity[zs])
        scaled_w = weighted_zone[zs] * (target_region[r] / max(weighted_region[r], _EPS))
        even = waterfill(target_region[r], np.ones(len(zs)), zone_capacity[zs])
        target_zone[zs] = _blend(scaled_w, even, overload)
    dev_replicas = np.zeros(n_ids)
    for z in range(n_zones):
        members = ids[dev_zone[ids] == z]
        dev_replicas[members] = waterfill(target_zone[z], weights[members], np.full(len(members), dev_cap))
    total = dev_replicas.sum()
    wanted = dev_replicas * (slots / total) if total > 0 else dev_replicas
    return Targets(
        dev_replicas=dev_replicas, wanted_parts=wanted, target_parts=_largest_remainder(wanted, slots if total > 0 else 0),
        dev_zone=dev_zone, dev_region=dev_region, zone_region=zone_region, zone_keys=zone_keys,
        region_keys=region_keys,
        max_zone=np.ceil(target_zone - 1e-6).astype(np.int64),
        max_region=np.ceil(target_region - 1e-6).astype(np.int64), max_dev=max_dev,
        dispersed_max_zone=np.ceil(dispersed_zone - 1e-6).astype(np.int64),
        dispersed_max_region=np.ceil(dispersed_region - 1e-6).astype(np.int64),
        zone_capacity=np.round(zone_capacity / dev_cap).astype(np.int64) * max_dev)
