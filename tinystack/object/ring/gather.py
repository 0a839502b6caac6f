"""Choosing which replica slots a rebalance frees: those on removed devices, those that spoil dispersion, and the
excess of overweight devices; never more than one replica of a partition, never one moved within min_part_hours."""

from __future__ import annotations

import numpy as np

from tinystack.object.ring.place import NONE, lut
from tinystack.object.ring.targets import Targets, part_dev_caps


def per_row_counts(keys: np.ndarray) -> np.ndarray:
    """For each slot, how many slots of its partition share its key (keys: rows x parts, -1 = empty)."""
    n = keys.shape[0]
    out = np.ones(keys.shape, dtype=np.int16)
    for r in range(n):
        for s in range(r + 1, n):
            same = keys[r] == keys[s]
            out[r] += same
            out[s] += same
    out[keys < 0] = 0
    return out


def _fits_somewhere_needy(a2d: np.ndarray, rows: np.ndarray, parts: np.ndarray, t: Targets, counts: np.ndarray,
                          active: np.ndarray, most: int = 16) -> np.ndarray:
    """Which candidate slots, once freed, could go to a zone that wants more without crowding a tier.

    Freeing a slot whose partition already fills every wanting zone's region (or the zone) would only move it
    to another device that has enough already. With more than ``most`` wanting zones every candidate counts.
    """
    deficit = np.clip(t.target_parts - counts, 0, None) * active
    zone_deficit = np.bincount(t.dev_zone[active], weights=deficit[active], minlength=len(t.zone_keys))
    needy = np.flatnonzero(zone_deficit > 0)
    if not len(needy) or len(needy) > most:
        return np.ones(len(parts), dtype=bool)
    zone_lut, region_lut = lut(t.dev_zone, dtype=np.int32), lut(t.dev_region, dtype=np.int32)
    zkeys, rkeys = zone_lut[a2d[:, parts]], region_lut[a2d[:, parts]]
    own_zone, own_region = zone_lut[a2d[rows, parts]], region_lut[a2d[rows, parts]]
    ok = np.zeros(len(parts), dtype=bool)
    for z in needy.tolist():
        rz = int(t.zone_region[z])
        zc = (zkeys == z).sum(axis=0) - (own_zone == z)
        rc = (rkeys == rz).sum(axis=0) - (own_region == rz)
        ok |= (zc < t.max_zone[z]) & (rc < t.max_region[rz]) & (zc < t.zone_capacity[z])
    return ok


def gather(a2d: np.ndarray, valid: np.ndarray, t: Targets, active: np.ndarray, locked: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Empty the slots to move, in place; returns the partitions touched (one replica each at most)."""
    active_lut = lut(active.astype(np.int64), fill=0).astype(bool)
    # Slots on devices being removed or weighted to zero, and slots past a shrunken replica count, always go.
    gone = (a2d != NONE) & (~active_lut[a2d] | ~valid)
    touched = gone.any(axis=0)
    a2d[gone] = NONE
    movable = ~touched & ~locked

    if (a2d != NONE).any():
        # Two replicas on one device are one copy: a partition keeps only the repeats that too few devices force
        # on it, and the others go, min_part_hours or not.
        n_active = int(active.sum())
        devs = np.where(a2d == NONE, -1, a2d.astype(np.int64))
        earlier = np.zeros(a2d.shape, dtype=np.int16)  # how many earlier slots of the partition hold the device
        for r in range(1, a2d.shape[0]):
            for q in range(r):
                earlier[r] += devs[q] == devs[r]
        earlier[devs < 0] = 0
        extra = earlier >= part_dev_caps(valid, n_active)[None, :]  # past the most any device may hold
        repeat = (earlier > 0) & ~extra
        held = ((devs >= 0) & ~extra).sum(axis=0)
        surplus = repeat.sum(axis=0) - (held - np.minimum(held, n_active))
        from_end = np.cumsum(repeat[::-1], axis=0)[::-1]
        extra |= repeat & (from_end <= surplus[None, :])  # the last repeats, while a device holds none
        if extra.any():
            a2d[extra] = NONE
            touched |= extra.any(axis=0)
            movable &= ~touched

    # Dispersion: a region or zone holding more replicas of a partition than it may.
    levels = ((lut(t.dev_region, dtype=np.int16), t.max_region), (lut(t.dev_zone, dtype=np.int32), t.max_zone))
    for key_lut, limit in levels if movable.any() and (a2d != NONE).any() else ():
        keys = key_lut[a2d]
        counts = per_row_counts(keys)
        for r in range(a2d.shape[0] - 1, -1, -1):
            over = (keys[r] >= 0) & (counts[r] > limit[np.clip(keys[r], 0, None)]) & movable
            a2d[r, over] = NONE
            touched |= over
            movable &= ~over

    # Overweight devices give up their excess, a random choice among their movable partitions. A random draw
    # first keeps about `oversample` x the excess of each device (cheap), and only those are checked and trimmed.
    n_ids = len(active)
    for oversample in (2.0, 4.0, 16.0, 1e9):
        assigned = a2d != NONE
        counts = np.bincount(a2d[assigned], minlength=n_ids)[:n_ids]
        # Exact targets: the slots above them add up to the slots other devices lack, so none moves needlessly.
        excess = counts - t.target_parts
        excess[~active] = 0
        if (excess <= 0).all():
            break
        keep = np.where(excess > 0, np.minimum(1.0, oversample * excess / np.maximum(counts, 1)), 0.0)
        draw = rng.random(a2d.shape, dtype=np.float32)
        rows, parts = np.nonzero(assigned & (draw < lut(keep, fill=0, dtype=np.float32)[a2d]) & movable[None, :])
        if not len(parts):
            break
        fits = _fits_somewhere_needy(a2d, rows, parts, t, counts, active)
        rows, parts = rows[fits], parts[fits]
        devs = a2d[rows, parts].astype(np.int64)
        order = np.lexsort((draw[rows, parts], devs))
        devs, rows, parts = devs[order], rows[order], parts[order]
        first = np.searchsorted(devs, devs, side="left")
        pick = (np.arange(len(devs)) - first) < excess[devs]
        rows, parts = rows[pick], parts[pick]
        _, once = np.unique(parts, return_index=True)
        rows, parts = rows[once], parts[once]
        a2d[rows, parts] = NONE
        touched[parts] = True
        movable[parts] = False
    return touched
