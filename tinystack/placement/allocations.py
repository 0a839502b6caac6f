"""Allocations: what consumers use on providers, written atomically for one or several consumers.

One write reads the current state without holding locks, checks capacity, then in one transaction
compare-and-swaps the generation of every provider it touches and of every consumer it changes, bumps
the per-inventory ``used`` counters with a guarded UPDATE, and replaces the allocation rows. A lost race
raises ``Retry`` and the caller starts over, so no provider ever ends past its capacity, even when the
writers are separate processes sharing one database."""

from __future__ import annotations

import typing
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Table, bindparam, cast, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.placement.models import Allocation, Consumer, Inventory, ResourceProvider, utcnow
from tinystack.placement.records import (
    ConsumerAllocations,
    InventoryRecord,
    ProviderUsage,
    capacity,
    concurrent_update,
)

ANY: Any = object()
"""A consumer generation that is not checked (microversions before 1.28, and the Python claim API)."""


class Retry(Exception):
    """Another writer changed a provider or consumer between our read and our write."""


class CapacityExceeded(errors.Conflict):
    """The allocations do not fit; 409 over HTTP, ``False`` from the Python claim API. ``usage`` holds the
    providers involved as the refused write found them."""

    usage: dict[str, ProviderUsage] = {}


class UnknownProvider(errors.BadRequest):
    """An allocation names a provider that does not exist (any more)."""

    def __init__(self, rp_uuid: str) -> None:
        super().__init__(f"Allocation for resource provider '{rp_uuid}' that does not exist.")
        self.rp_uuid = rp_uuid


@dataclass
class ConsumerWrite:
    consumer_id: str
    allocations: dict[str, dict[str, int]]  # rp uuid -> resource class -> amount; empty: remove them all
    project_id: str | None = None
    user_id: str | None = None
    generation: Any = ANY  # int, None (must be a new consumer) or ANY
    consumer_type: str | None = None
    _existing: dict[str, Any] = field(default_factory=dict, repr=False)


def _constraint(rc: str, rp_uuid: str, amount: int, inv: Any) -> str | None:
    if amount < inv.min_unit or amount > inv.max_unit or amount % inv.step_size:
        return (f"Unable to allocate inventory: Unable to allocate {amount} of {rc} on resource provider {rp_uuid}: "
                f"it violates min_unit ({inv.min_unit}), max_unit ({inv.max_unit}) or step_size ({inv.step_size}).")
    return None


def _usage(rows: Any, uuid_of: dict[int, str], generations: dict[int, int],
           delta: dict[tuple[int, str], int] | None = None) -> dict[str, ProviderUsage]:
    """Providers' inventories as read (``delta`` None) or as the write leaves them (generations bumped)."""
    inventories: dict[int, dict[str, InventoryRecord]] = defaultdict(dict)
    for r in rows:
        used = r.used + (delta.get((r.rp_id, r.resource_class), 0) if delta is not None else 0)
        inventories[r.rp_id][r.resource_class] = InventoryRecord(
            r.resource_class, r.total, r.reserved, r.min_unit, r.max_unit, r.step_size, r.allocation_ratio, used)
    bumped = 1 if delta is not None else 0
    return {uuid_of[rp_id]: ProviderUsage(uuid_of[rp_id], generations[rp_id] + bumped, dict(inventories[rp_id]))
            for rp_id in inventories}


def _refused(message: str, rows: Any, uuid_of: dict[int, str], generations: dict[int, int]) -> CapacityExceeded:
    exc = CapacityExceeded(message)
    exc.usage = _usage(rows, uuid_of, generations)
    return exc


A, C, INV, R = (typing.cast(Table, m.__table__) for m in (Allocation, Consumer, Inventory, ResourceProvider))

# Built once: the claim path runs these for every boot, so they must hit SQLAlchemy's compiled cache.
_CONSUMERS = select(C.c.uuid, C.c.generation, C.c.project_id, C.c.user_id, C.c.consumer_type).where(
    C.c.uuid.in_(bindparam("ids", expanding=True)))
_OLD = select(A.c.rp_id, A.c.resource_class, A.c.used).where(A.c.consumer_id.in_(bindparam("ids", expanding=True)))
_RPS = select(R.c.uuid, R.c.id, R.c.generation).where(
    R.c.uuid.in_(bindparam("uuids", expanding=True)) | R.c.id.in_(bindparam("rp_ids", expanding=True)))
_INV = select(INV.c.rp_id, INV.c.resource_class, INV.c.total, INV.c.reserved, INV.c.min_unit, INV.c.max_unit, INV.c.step_size,
              INV.c.allocation_ratio, INV.c.used).where(INV.c.rp_id.in_(bindparam("rp_ids", expanding=True)))
_BUMP = R.update().where(R.c.id == bindparam("b_id"), R.c.generation == bindparam("b_gen")).values(
    generation=bindparam("b_gen") + 1)
_USE = INV.update().where(INV.c.rp_id == bindparam("b_rp"), INV.c.resource_class == bindparam("b_rc"),
                        INV.c.used + bindparam("b_d") <= cast((INV.c.total - INV.c.reserved) * INV.c.allocation_ratio, Integer)
                        ).values(used=INV.c.used + bindparam("b_d"))
_FREE = INV.update().where(INV.c.rp_id == bindparam("b_rp"), INV.c.resource_class == bindparam("b_rc")).values(
    used=INV.c.used + bindparam("b_d"))
_DELETE = A.delete().where(A.c.consumer_id.in_(bindparam("ids", expanding=True)))
_C_INSERT = C.insert()
_C_UPDATE = C.update().where(C.c.uuid == bindparam("b_uuid"), C.c.generation == bindparam("b_gen")).values(
    generation=bindparam("b_gen") + 1, project_id=bindparam("b_project"), user_id=bindparam("b_user"),
    consumer_type=bindparam("b_type"), updated_at=bindparam("b_now"))
_C_DELETE = C.delete().where(C.c.uuid == bindparam("b_uuid"), C.c.generation == bindparam("b_gen"))


def write(conn: Connection, writes: list[ConsumerWrite]) -> dict[str, ProviderUsage]:
    """Replace the allocations of each consumer in ``writes``; raise ``Retry`` on a lost race.

    Returns every provider the write touched, with its new generation and usage."""
    ids = [w.consumer_id for w in writes]
    if len(set(ids)) != len(ids):
        raise errors.BadRequest("A consumer appears more than once in the request.")
    consumers = {row[0]: tuple(row[1:]) for row in conn.execute(_CONSUMERS, {"ids": ids})}
    for w in writes:
        have = consumers.get(w.consumer_id)
        if w.generation is not ANY and (have[0] if have else None) != w.generation:
            raise concurrent_update(f"consumer generation conflict - expected {w.generation} but got "
                                    f"{have[0] if have else None} for consumer {w.consumer_id}.")
    # A consumer seen for the first time has no allocations to read or remove (a boot's claim).
    old = conn.execute(_OLD, {"ids": ids}).all() if consumers else []
    wanted = {u for w in writes for u in w.allocations}
    rps = {row[0]: (row[1], row[2]) for row in conn.execute(
        _RPS, {"uuids": sorted(wanted), "rp_ids": sorted({r[0] for r in old})})}
    for rp_uuid in sorted(wanted - set(rps)):
        raise UnknownProvider(rp_uuid)
    uuid_of = {rp_id: u for u, (rp_id, _) in rps.items()}
    generations = {rp_id: gen for rp_id, gen in rps.values()}

    delta: dict[tuple[int, str], int] = defaultdict(int)
    for rp_id, rc, used in old:
        delta[(rp_id, rc)] -= used
    new_rows = []
    for w in writes:
        for rp_uuid, resources in w.allocations.items():
            rp_id = rps[rp_uuid][0]
            for rc, amount in resources.items():
                delta[(rp_id, rc)] += amount
                new_rows.append({"rp_id": rp_id, "consumer_id": w.consumer_id, "resource_class": rc, "used": amount})
    touched = sorted({rp_id for rp_id, _ in delta})
    inv_rows = conn.execute(_INV, {"rp_ids": touched}).all() if touched else []
    inv = {(r.rp_id, r.resource_class): r for r in inv_rows}
    for row in new_rows:
        key = (row["rp_id"], row["resource_class"])
        rp_uuid = uuid_of[row["rp_id"]]
        if key not in inv:
            raise _refused(f"Unable to allocate inventory: Inventory for '{row['resource_class']}' on resource "
                           f"provider '{rp_uuid}' invalid.", inv_rows, uuid_of, generations)
        why = _constraint(row["resource_class"], rp_uuid, row["used"], inv[key])
        if why:
            raise _refused(why, inv_rows, uuid_of, generations)
    for key, d in delta.items():
        if d > 0:
            i = inv[key]
            if i.used + d > capacity(i.total, i.reserved, i.allocation_ratio):
                raise _refused(
                    f"Unable to allocate inventory: Unable to create allocation for '{key[1]}' on resource provider "
                    f"'{uuid_of[key[0]]}'. The requested amount would exceed the capacity.", inv_rows, uuid_of,
                    generations)

    # The write phase: every statement below is conditional on what was read above.
    for rp_id in touched:  # a fixed order, so two writers never wait on each other in a cycle
        if conn.execute(_BUMP, {"b_id": rp_id, "b_gen": generations[rp_id]}).rowcount != 1:
            raise Retry()
    for (rp_id, rc), d in sorted(delta.items()):
        if d and conn.execute(_USE if d > 0 else _FREE, {"b_rp": rp_id, "b_rc": rc, "b_d": d}).rowcount != 1:
            raise Retry()
    if old:
        conn.execute(_DELETE, {"ids": ids})
    if new_rows:
        conn.execute(A.insert(), new_rows)
    _write_consumers(conn, writes, consumers)
    return _usage(inv_rows, uuid_of, generations, delta)


def _write_consumers(conn: Connection, writes: list[ConsumerWrite], consumers: dict[str, tuple[Any, ...]]) -> None:
    now = utcnow()
    for w in writes:
        have = consumers.get(w.consumer_id)
        if have is None:
            if w.allocations:
                conn.execute(_C_INSERT, {"uuid": w.consumer_id, "project_id": w.project_id or "",
                                         "user_id": w.user_id or "", "generation": 1,
                                         "consumer_type": w.consumer_type, "created_at": now, "updated_at": now})
            continue
        if not w.allocations:
            res = conn.execute(_C_DELETE, {"b_uuid": w.consumer_id, "b_gen": have[0]})
        else:
            res = conn.execute(_C_UPDATE, {"b_uuid": w.consumer_id, "b_gen": have[0], "b_project": w.project_id or have[1],
                                           "b_user": w.user_id or have[2], "b_type": w.consumer_type or have[3],
                                           "b_now": now})
        if res.rowcount != 1:
            raise Retry()


def of_consumer(s: Session, consumer_id: str) -> ConsumerAllocations:
    c = s.get(Consumer, consumer_id)
    rows = s.execute(select(ResourceProvider.uuid, ResourceProvider.generation, Allocation.resource_class,
                            Allocation.used).join(ResourceProvider, ResourceProvider.id == Allocation.rp_id)
                     .where(Allocation.consumer_id == consumer_id))
    allocs: dict[str, dict[str, int]] = defaultdict(dict)
    gens: dict[str, int] = {}
    for rp_uuid, gen, rc, used in rows:
        allocs[rp_uuid][rc] = used
        gens[rp_uuid] = gen
    if c is None:
        return ConsumerAllocations(consumer_id, None, None, None, dict(allocs), gens)
    return ConsumerAllocations(consumer_id, c.project_id, c.user_id, c.generation, dict(allocs), gens, c.consumer_type)


def of_provider(s: Session, rp_id: int) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for consumer, rc, used in s.execute(select(Allocation.consumer_id, Allocation.resource_class, Allocation.used)
                                        .where(Allocation.rp_id == rp_id)):
        out[consumer][rc] = used
    return dict(out)


def usages_of(s: Session, project_id: str, user_id: str | None = None,
              consumer_type: str | None = None) -> dict[str, dict[str, int]]:
    """Usage per consumer type (``all`` and ``unknown`` as placement names them) for a project."""
    q = (select(Consumer.consumer_type, Allocation.resource_class, func.sum(Allocation.used))
         .join(Consumer, Consumer.uuid == Allocation.consumer_id).where(Consumer.project_id == project_id)
         .group_by(Consumer.consumer_type, Allocation.resource_class))
    if user_id is not None:
        q = q.where(Consumer.user_id == user_id)
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ctype, rc, total in s.execute(q):
        out[ctype or "unknown"][rc] += int(total)
        out["all"][rc] += int(total)
    return {k: dict(v) for k, v in out.items()}
