"""Placing unassigned replica slots: zones first (a small transport problem per round), then devices by quota.

Each round gives every partition that still misses a replica one more. Partitions with the same zone occupancy
form a group; a Sinkhorn scaling of the group x zone matrix (whose prior strongly prefers regions and zones the
partition does not use yet) splits each group across the zones in proportion to what the zones still want. Within
a zone the devices are dealt out by quota and shuffled; the few partitions that drew a device they already use
trade with another. Everything is vectorised: a part power 20 ring (3M slots) places in a few seconds.
"""

from __future__ import annotations

import numpy as np

from tinystack.object.ring.targets import Targets, _largest_remainder, part_dev_caps

NONE = 0xFFFF
_LUT = NONE + 1


def lut(values: np.ndarray, fill: int = -1, dtype: type = np.int32) -> np.ndarray:
    """A lookup table indexed by device id (0..0xFFFF, where 0xFFFF is "no device")."""
    out: np.ndarray = np.full(_LUT, fill, dtype=dtype)
    out[:len(values)] = values
    out[NONE] = fill
    return out


def stable_argsort(values: np.ndarray) -> np.ndarray:
    """A stable argsort of small non-negative integers (radix sort when they fit 16 bits)."""
    if len(values) and int(values.max()) < 1 << 16:
        return np.argsort(values.astype(np.uint16), kind="stable")
    return np.argsort(values, kind="stable")


def sort_rows(keys: np.ndarray) -> np.ndarray:
    """Sort a (rows x parts) array along the rows; a compare-exchange network for the usual few replicas."""
    if keys.shape[0] > 6:
        return np.sort(keys, axis=0)
    rows = [k.copy() for k in keys]
    n = len(rows)
    for i in range(n):
        for j in range(n - 1 - i):
            lo = np.minimum(rows[j], rows[j + 1])
            np.maximum(rows[j], rows[j + 1], out=rows[j + 1])
            rows[j] = lo
    return np.stack(rows) if rows else keys


def group_by_content(keys: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """Group the columns of (rows x parts) keys in 0..n_values-1 (-1 empty) by their sorted content.

    Returns (the distinct sorted columns as rows, and each part's group index).
    """
    srt = sort_rows(keys).astype(np.int64) + 1
    base = n_values + 1
    if base ** srt.shape[0] < 2 ** 62:
        code = np.zeros(srt.shape[1], dtype=np.int64)
        for row in srt:
            code *= base
            code += row
        if srt.shape[1] and int(code.max()) < max(1 << 22, 4 * srt.shape[1]):
            present = np.bincount(code).nonzero()[0]
            remap = np.zeros(int(code.max()) + 1, dtype=np.int64)
            remap[present] = np.arange(len(present))
            inverse = remap[code]
            first = np.zeros(len(present), dtype=np.int64)
            first[inverse[::-1]] = np.arange(len(code))[::-1]
        else:
            _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
        return srt[:, first].T - 1, inverse.reshape(-1)
    uniq_cols, inverse = np.unique(srt.T, axis=0, return_inverse=True)
    return uniq_cols - 1, inverse.reshape(-1)


def _zone_split(sigs: np.ndarray, sizes: np.ndarray, t: Targets, zone_quota: np.ndarray) -> np.ndarray:
    """Integer counts (groups x zones): how many partitions of each group get their next replica in each zone."""
    n_groups, n_zones = len(sigs), len(t.zone_keys)
    n_regions = len(t.region_keys)
    prior = np.zeros((n_groups, n_zones))
    for g, sig in enumerate(sigs):
        used = sig[sig >= 0]
        zc = np.bincount(used, minlength=n_zones)
        rc = np.bincount(t.zone_region[used], minlength=n_regions)[t.zone_region]
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
    for _ in range(100):
        rs = x.sum(axis=1)
        x *= (rows / np.where(rs > 0, rs, 1))[:, None]
        cs = x.sum(axis=0)
        if np.allclose(cs, cols, rtol=1e-6, atol=0.5):
            break
        x *= (cols / np.where(cs > 0, cs, 1))[None, :]
    rs = x.sum(axis=1)
    x *= (rows / np.where(rs > 0, rs, 1))[:, None]
    # Round row by row, carrying each zone's rounding error forward so that the zone totals stay exact.
    out = np.zeros((n_groups, n_zones), dtype=np.int64)
    carry = np.zeros(n_zones)
    for g in np.argsort(-sizes, kind="stable"):
        allowed = x[g] > 1e-12
        v = np.where(allowed, np.clip(x[g] + carry, 0, None), 0.0)
        if v.sum() <= 0:
            v = x[g]
        out[g] = _largest_remainder(v * (sizes[g] / v.sum()), int(sizes[g]))
        carry += x[g] - out[g]
    return out


def _deal(count: int, devs: np.ndarray, quota: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``count`` device ids from ``devs``, in proportion to their positive quota (else to their weight)."""
    share = np.clip(quota, 0, None).astype(np.float64)
    if share.sum() < count:
        share = share + (count - share.sum()) * weight / max(weight.sum(), 1e-12)
    per = _largest_remainder(share * (count / share.sum()), count)
    return np.repeat(devs, per)


def _fix_conflicts(a2d: np.ndarray, parts: np.ndarray, chosen: np.ndarray, suspects: np.ndarray,
                   rng: np.random.Generator, zone_devs: np.ndarray, quota: np.ndarray, caps: np.ndarray) -> None:
    """No partition may get a device it already uses ``caps[part]`` times: swap with another, else pick by hand.

    ``suspects`` are the positions that could conflict (their partition already has a replica in the zone).
    """
    def bad(idx: np.ndarray, devs: np.ndarray) -> np.ndarray:
        return (a2d[:, parts[idx]] == devs[None, :]).sum(axis=0) >= caps[parts[idx]]

    conflict = suspects[bad(suspects, chosen[suspects])]
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
    for k in conflict.tolist():
        have = a2d[:, parts[k]].tolist()
        for pool in (zone_devs, np.flatnonzero(quota > -np.inf)):
            free = [d for d in pool[np.argsort(-quota[pool], kind="stable")].tolist() if have.count(d) < caps[parts[k]]]
            if free:
                chosen[k] = free[0]
                break


def place(a2d: np.ndarray, valid: np.ndarray, t: Targets, active: np.ndarray, rng: np.random.Generator) -> None:
    """Fill every valid empty slot of ``a2d`` (rows x parts, NONE = empty) in place."""
    n_ids, n_zones = len(active), len(t.zone_keys)
    quota = t.target_parts.astype(np.float64) - np.bincount(a2d[a2d != NONE], minlength=n_ids)[:n_ids]
    quota[~active] = -np.inf
    zone_lut = lut(t.dev_zone, dtype=np.int16 if n_zones < 32000 else np.int32)
    zone_devs = [np.flatnonzero((t.dev_zone == z) & active) for z in range(n_zones)]
    caps = part_dev_caps(valid, int(active.sum()))
    for _round in range(a2d.shape[0] + 2):
        empty = a2d == NONE
        empty &= valid
        parts = np.flatnonzero(empty.any(axis=0))
        if not len(parts):
            return
        sub = empty[:, parts] if len(parts) < a2d.shape[1] else empty
        rows = np.zeros(len(parts), dtype=np.int64)
        for r in range(a2d.shape[0] - 1, 0, -1):  # the first empty row of each partition
            rows[sub[r]] = r
        zones = zone_lut[a2d[:, parts] if len(parts) < a2d.shape[1] else a2d]
        sigs, inverse = group_by_content(zones, n_zones)
        sizes = np.bincount(inverse, minlength=len(sigs))
        zone_quota = np.array([np.clip(quota[d], 0, None).sum() for d in zone_devs])
        split = _zone_split(sigs, sizes, t, zone_quota)
        # Random order within each group; in that order each group's run is cut into its zones' shares.
        perm = rng.permutation(len(parts))
        order = perm[stable_argsort(inverse[perm])]
        parts, rows = parts[order], rows[order]
        n_groups = len(sigs)
        part_zone = np.repeat(np.tile(np.arange(n_zones, dtype=np.int32), n_groups), split.ravel())
        used = np.zeros((n_groups, n_zones), dtype=bool)  # the group already has a replica in the zone
        held = sigs >= 0
        used[np.nonzero(held)[0], sigs[held]] = True
        shared = np.repeat(used.ravel(), split.ravel())
        chosen = np.empty(len(parts), dtype=np.uint16)
        round_caps = caps
        if caps.max() > 1:  # fewer devices than replicas: every device holds one before any holds two
            round_caps = caps.copy()
            srt = np.sort(a2d[:, parts].astype(np.int64), axis=0)
            distinct = ((srt[1:] != srt[:-1]) & (srt[1:] != NONE)).sum(axis=0) + (srt[0] != NONE)
            round_caps[parts] = np.where(distinct < int(active.sum()), 1, caps[parts])
        by_zone = stable_argsort(part_zone)
        zstarts = np.concatenate(([0], np.cumsum(split.sum(axis=0))))
        for z, devs in enumerate(zone_devs):
            idx = by_zone[zstarts[z]:zstarts[z + 1]]
            if not len(idx):
                continue
            dealt = _deal(len(idx), devs, quota[devs], t.wanted_parts[devs])
            dealt = dealt[rng.permutation(len(dealt))]
            suspects = np.flatnonzero(shared[idx])
            if len(suspects):
                _fix_conflicts(a2d, parts[idx], dealt, suspects, rng, devs, quota, round_caps)
            chosen[idx] = dealt
            quota -= np.bincount(dealt, minlength=n_ids)[:n_ids]
        if rows[0] == rows[-1] and (rows == rows[0]).all():
            a2d[rows[0], parts] = chosen
        else:
            a2d[rows, parts] = chosen
    raise RuntimeError("placement did not converge")
