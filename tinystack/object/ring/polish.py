"""The last step of a rebalance: rounding in the zone split can leave a device a slot or two off its target.

Slots placed in this very rebalance are moved from devices above target to devices below it, when the partition
takes the new device without crowding a region or zone. Only freshly placed slots move, so the number of
partitions moved stays the same.
"""

from __future__ import annotations

import numpy as np

from tinystack.object.ring.place import NONE, lut
from tinystack.object.ring.targets import Targets


def polish(a2d: np.ndarray, before: np.ndarray, t: Targets, active: np.ndarray, max_pairs: int = 2000) -> int:
    """Even out devices above/below target with this rebalance's own placements; returns slots reassigned."""
    n_ids = len(active)
    counts = np.bincount(a2d[a2d != NONE], minlength=n_ids)[:n_ids].astype(np.int64)
    diff = np.where(active, counts - t.target_parts, 0)
    over = [int(d) for d in np.flatnonzero(diff > 0)]
    under = [int(d) for d in np.flatnonzero(diff < 0)]
    if not over or not under or len(over) * len(under) > max_pairs:
        return 0
    fresh = (a2d != before) & (a2d != NONE)
    zone_lut, region_lut = lut(t.dev_zone), lut(t.dev_region)
    moved = 0
    for d_over in over:
        rows, parts = np.nonzero(fresh & (a2d == d_over))
        for d_under in sorted(under, key=lambda d: diff[d]):
            if diff[d_over] <= 0 or not len(parts):
                break
            if diff[d_under] >= 0:
                continue
            z, r = int(t.dev_zone[d_under]), int(t.dev_region[d_under])
            cols = a2d[:, parts]
            ok = ~(cols == d_under).any(axis=0)
            if t.dev_zone[d_over] != z:
                ok &= (zone_lut[cols] == z).sum(axis=0) < t.max_zone[z]
            if t.dev_region[d_over] != r:
                ok &= (region_lut[cols] == r).sum(axis=0) < t.max_region[r]
            take = np.flatnonzero(ok)[:int(min(diff[d_over], -diff[d_under]))]
            a2d[rows[take], parts[take]] = d_under
            diff[d_over] -= len(take)
            diff[d_under] += len(take)
            moved += len(take)
            keep = np.ones(len(parts), dtype=bool)
            keep[take] = False
            rows, parts = rows[keep], parts[keep]
    return moved
