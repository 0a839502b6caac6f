"""Placing unassigned replica slots: zones first (a small transport problem per round), then devices by quota.

Each round gives every partition that still misses a replica one more. Partitions with the same zone occupancy
form a group; a Sinkhorn scaling of the group x zone matrix (whose prior strongly prefers regions and zones the
partition does not use yet) splits each group across the zones in proportion to what the zones still want. Within
a zone the devices are dealt out by quota and shuffled; the few partitions that drew a device they already use
trade with another. Everything is vectorised: a part power 20 ring (3M slots) places in a few seconds.
"""

from __future__ import annotations

import numpy as np

from tinystack.object.ring.targets import Targets, _largest_remainder

NONE = 0xFFFF
_LUT = NONE + 1


def lut(values: np.ndarray, fill: int = -1) -> np.ndarray:
    """A lookup table indexed by device id (0..0xFFFF, where 0xFFFF is "no device")."""
    out = np.full(_LUT, fill, dtype=np.int64)
    out[:len(values)] = values
    out[NONE] = fill
    return out


def _signatures(zones: np.ndarray, n_zones: int) -> tuple[np.ndarray, np.ndarray]:
    """Group columns of (rows x parts) zone indexes (-1 empty) by their sorted content: (unique rows, inverse)."""
    srt = np.sort(zones, axis=0) + 1
    base = n_zones + 1
    if base ** srt.shape[0] < 2 ** 62:
        key = np.zeros(srt.shape[1], dtype=np.int64)
        for row in srt:
            key = key * base + row
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return srt[:, first].T - 1, inverse.reshape(-1)
    uniq_cols, inverse = np.unique(srt.T, axis=0, return_inverse=True)
    return uniq_cols - 1, inverse.reshape(-1)


def _zone_split(sigs: np.ndarray, sizes: np.ndarray, t: Targets, zone_quota: np.ndarray) -> np.ndarray:
    """Integer counts (groups x zones): how many partitions of each group get their next replica in each zone."""
    n_groups, n_zones = len(sigs), len(t.zone_keys)
    n_regions = len(t.region_keys)
    prior = np.zeros((n_groups, n_zones))
    for g, sig in enumerate(sigs):
        zc = np.bincount(sig[sig >= 0], minlength=n_zones)
        rc = np.bincount(t.zone_region[sig[sig >= 0]], minlength=n_regions)[t.zone_region]
        ok = (zc < t.max_zone) & (rc < t.max_region[t.zone_region]) & (zc < t.zone_capacity)
        if not ok.any():
            ok = zc < t.zone_capacity
        if not ok.any():
            ok = np.ones(n_zones, dtype=bool)
        prior[g] = ok * (1e-6 ** rc) * (1e-3 ** zc)
    need = float(sizes.sum())
    cols = np.clip(zone_quota, 0, None).astype(np.float64)
    if cols.sum() < need:  # more slots than the zones want (locked moves, rounding): overflow by capacity share
        cols += (need - cols.sum()) * (t.zone_capacity / t.zone_capacity.sum())
    cols = np.maximum(cols, need * 1e-9)
    x = prior.copy()
    rows = sizes.astype(np.float64)
    for _ in range(60):
        rs = x.sum(axis=1)
        x *= (rows / np.where(rs > 0, rs, 1))[:, None]
        cs = x.sum(axis=0)
        x *= (cols / np.where(cs > 0, cs, 1))[None, :]
    rs = x.sum(axis=1)
    x *= (rows / np.where(rs > 0, rs, 1))[:, None]
    out = np.zeros((n_groups, n_zones), dtype=np.int64)
    for g in range(n_groups):
        out[g] = _largest_remainder(x[g], int(sizes[g]))
    return out


def _deal(count: int, devs: np.ndarray, quota: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``count`` device ids from ``devs``, in proportion to their positive quota (else to their weight)."""
    share = np.clip(quota, 0, None).astype(np.float64)
    if share.sum() < count:
        share = share + (count - share.sum()) * weight / max(weight.sum(), 1e-12)
    per = _largest_remainder(share * (count / share.sum()), count)
    return np.repeat(devs, per)


def _fix_conflicts(a2d: np.ndarray, parts: np.ndarray, chosen: np.ndarray, rng: np.random.Generator,
                   fallback: np.ndarray, quota: np.ndarray, max_dev: int) -> None:
    """Make sure no partition gets a device it already uses ``max_dev`` times (swap with another, else pick)."""
    def bad(idx: np.ndarray, devs: np.ndarray) -> np.ndarray:
        return (a2d[:, parts[idx]] == devs[None, :]).sum(axis=0) >= max_dev

    conflict = np.flatnonzero(bad(np.arange(len(parts)), chosen))
    for _ in range(8):
        if not len(conflict):
            return
        other = rng.integers(0, len(parts), size=len(conflict))
        _, keep = np.unique(other, return_index=True)
        i, j = conflict[keep], other[keep]
        sel = ~np.isin(j, conflict) & ~bad(i, chosen[j]) & ~bad(j, chosen[i])
        i, j = i[sel], j[sel]
        chosen[i], chosen[j] = chosen[j], chosen[i].copy()
        conflict = conflict[bad(conflict, chosen[conflict])]
    for k in conflict:
        have = a2d[:, parts[k]].tolist()
        for pool in (fallback, np.flatnonzero(quota > -np.inf)):
            free = [d for d in pool[np.argsort(-quota[pool], kind="stable")].tolist() if have.count(d) < max_dev]
            if free:
                chosen[k] = free[0]
                break


def place(a2d: np.ndarray, valid: np.ndarray, t: Targets, active: np.ndarray, rng: np.random.Generator) -> None:
    """Fill every valid empty slot of ``a2d`` (rows x parts, NONE = empty) in place."""
    n_ids = len(active)
    assigned = a2d[a2d != NONE]
    quota = t.target_parts.astype(np.float64) - np.bincount(assigned, minlength=n_ids)[:n_ids]
    quota[~active] = -np.inf
    zone_lut = lut(t.dev_zone)
    weights = t.wanted_parts
    zone_devs = [np.flatnonzero((t.dev_zone == z) & active) for z in range(len(t.zone_keys))]
    for _round in range(a2d.shape[0] + 2):
        empty = (a2d == NONE) & valid
        parts = np.flatnonzero(empty.any(axis=0))
        if not len(parts):
            return
        parts = parts[rng.permutation(len(parts))]
        rows = empty[:, parts].argmax(axis=0)
        zones = zone_lut[a2d[:, parts]]
        sigs, inverse = _signatures(zones, len(t.zone_keys))
        sizes = np.bincount(inverse, minlength=len(sigs))
        zone_quota = np.array([np.clip(quota[d], 0, None).sum() for d in zone_devs])
        split = _zone_split(sigs, sizes, t, zone_quota)
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate(([0], np.cumsum(sizes)))
        part_zone = np.empty(len(parts), dtype=np.int64)
        for g in range(len(sigs)):
            members = order[starts[g]:starts[g + 1]]
            part_zone[members] = np.repeat(np.arange(len(t.zone_keys)), split[g])
        chosen = np.empty(len(parts), dtype=np.int64)
        for z, devs in enumerate(zone_devs):
            idx = np.flatnonzero(part_zone == z)
            if not len(idx):
                continue
            dealt = _deal(len(idx), devs, quota[devs], weights[devs])
            dealt = dealt[rng.permutation(len(dealt))]
            _fix_conflicts(a2d, parts[idx], dealt, rng, devs, quota, t.max_dev)
            chosen[idx] = dealt
            quota -= np.bincount(dealt, minlength=n_ids)[:n_ids]
        a2d[rows, parts] = chosen.astype(a2d.dtype)
    raise RuntimeError("placement did not converge")
