"""Allocation candidates: the providers that can satisfy a request right now, found in one SQL query.

A candidate is one provider that has every requested resource class with room left (capacity minus the
``used`` counter), passes min_unit/max_unit/step_size, has the required traits, none of the forbidden ones
and is in the requested aggregates. Providers sharing resources through aggregates are not considered."""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, cast, func, literal, select
from sqlalchemy.engine import Connection

from tinystack.placement.models import Inventory, ProviderTrait, ResourceProvider
from tinystack.placement.providers import filter_providers
from tinystack.placement.records import Candidate, ResourceSummary, capacity

RP = ResourceProvider.__table__
INV = Inventory.__table__


@dataclass(frozen=True)
class Request:
    """One request group (placement's unsuffixed group): all of it from a single provider."""

    resources: Mapping[str, int]
    required: Sequence[str] = ()
    forbidden: Sequence[str] = ()
    member_of: Sequence[tuple[bool, list[str]]] = ()  # (negated, any of these aggregates)
    in_tree: str | None = None
    suffix: str = ""  # "" for the unsuffixed group; granular groups (1.25) are numbered


def find(conn: Connection, req: Request, limit: int | None = None) -> list[Candidate]:
    key = (tuple(sorted(req.resources.items())), tuple(req.required), tuple(req.forbidden),
           tuple((neg, tuple(aggs)) for neg, aggs in req.member_of), req.in_tree, limit)
    rows = conn.execute(_cached_query(key)).all()
    rcs = list(enumerate(sorted(req.resources), start=1))
    amounts = dict(req.resources)
    out = []
    rs = ResourceSummary
    for row in rows:
        uuid = row[1]
        # Columns: id, uuid, name, then (capacity, used) per resource class in sorted order.
        summary = {rc: rs(row[2 * i + 1], row[2 * i + 2]) for i, rc in rcs}
        out.append(Candidate({uuid: amounts}, {uuid: summary}, {uuid: row[2]}, uuid))
    return out


@functools.lru_cache(maxsize=512)
def _cached_query(key: tuple[Any, ...]) -> Any:
    """Building the statement costs more than running it; requests repeat (flavors are few), so keep them."""
    resources, required, forbidden, member_of, in_tree, limit = key
    req = Request(dict(resources), required, forbidden, [(neg, list(aggs)) for neg, aggs in member_of], in_tree)
    return _query(req, limit)


def _query(req: Request, limit: int | None) -> Any:
    frm: Any = RP
    cols: list[Any] = [RP.c.id, RP.c.uuid, RP.c.name]
    where: list[Any] = []
    for i, rc in enumerate(sorted(req.resources)):
        amount = req.resources[rc]
        inv = INV.alias(f"inv{i}")
        frm = frm.join(inv, and_(inv.c.rp_id == RP.c.id, inv.c.resource_class == rc))
        cap = cast((inv.c.total - inv.c.reserved) * inv.c.allocation_ratio, Integer)
        cols += [cap, inv.c.used]
        where += [cap - inv.c.used >= amount,
                  inv.c.min_unit <= amount, inv.c.max_unit >= amount, literal(amount) % inv.c.step_size == 0]
    q = select(*cols).select_from(frm).where(*where)
    if req.in_tree is not None:
        root = select(func.coalesce(RP.c.root_id, RP.c.id)).where(RP.c.uuid == req.in_tree).scalar_subquery()
        q = q.where(func.coalesce(RP.c.root_id, RP.c.id) == root)
    q = filter_providers(q, RP.c.id, req.member_of, req.required, req.forbidden)
    q = q.order_by(RP.c.id)
    return q.limit(limit) if limit is not None else q


def all_summaries(conn: Connection, rp_uuids: Sequence[str]) -> dict[str, dict[str, ResourceSummary]]:
    """Every inventory of the given providers (microversion 1.27 and later show them all)."""
    out: dict[str, dict[str, ResourceSummary]] = {u: {} for u in rp_uuids}
    rows = conn.execute(select(RP.c.uuid, INV.c.resource_class, INV.c.total, INV.c.reserved, INV.c.allocation_ratio,
                               INV.c.used).join(INV, INV.c.rp_id == RP.c.id).where(RP.c.uuid.in_(rp_uuids)))
    for uuid, rc, total, reserved, ratio, used in rows:
        out[uuid][rc] = ResourceSummary(capacity(total, reserved, ratio), used)
    return out


def traits_of(conn: Connection, rp_uuids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {u: [] for u in rp_uuids}
    rows = conn.execute(select(RP.c.uuid, ProviderTrait.__table__.c.trait)
                        .join(ProviderTrait.__table__, ProviderTrait.__table__.c.rp_id == RP.c.id)
                        .where(RP.c.uuid.in_(rp_uuids)).order_by(ProviderTrait.__table__.c.trait))
    for uuid, trait in rows:
        out[uuid].append(trait)
    return out


def find_groups(conn: Connection, groups: Sequence[Request], isolate: bool, limit: int | None) -> list[Candidate]:
    """Granular requests: each group from one provider, all of them in one provider tree.

    With ``isolate`` the numbered groups use different providers. Where several groups land on one
    provider, their sum must fit there too."""
    if len(groups) == 1:
        return find(conn, groups[0], limit)
    per_group = [find(conn, g, None) for g in groups]
    uuids = {c.rp_uuid for found in per_group for c in found}
    root_of = _roots(conn, uuids)
    by_root: list[dict[str, list[Candidate]]] = []
    for found in per_group:
        grouped: dict[str, list[Candidate]] = defaultdict(list)
        for c in found:
            grouped[root_of[c.rp_uuid]].append(c)
        by_root.append(grouped)
    roots = [r for r in by_root[0] if all(r in g for g in by_root[1:])]
    numbered = [i for i, g in enumerate(groups) if g.suffix]
    out: list[Candidate] = []
    seen: set[str] = set()
    for root in roots:
        for combo in itertools.product(*(g[root] for g in by_root)):
            if isolate and len({combo[i].rp_uuid for i in numbered}) < len(numbered):
                continue
            merged = _merge(combo)
            if merged is None:
                continue
            key = repr(sorted((u, sorted(r.items())) for u, r in merged.allocations.items()))
            if key not in seen:
                seen.add(key)
                out.append(merged)
                if limit is not None and len(out) >= limit:
                    return out
    return out


def _merge(combo: Sequence[Candidate]) -> Candidate | None:
    allocs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    summaries: dict[str, dict[str, ResourceSummary]] = defaultdict(dict)
    names: dict[str, str] = {}
    for c in combo:
        for u, res in c.allocations.items():
            for rc, n in res.items():
                allocs[u][rc] += n
            summaries[u].update(c.summaries[u])
            names.update(c.names)
    for u, res in allocs.items():
        if any(n > summaries[u][rc].free for rc, n in res.items()):
            return None
    return Candidate({u: dict(r) for u, r in allocs.items()}, dict(summaries), names)


def _roots(conn: Connection, uuids: set[str]) -> dict[str, str]:
    root = RP.alias("root")
    rows = conn.execute(select(RP.c.uuid, root.c.uuid).join(root, root.c.id == func.coalesce(RP.c.root_id, RP.c.id))
                        .where(RP.c.uuid.in_(uuids)))
    return {u: r for u, r in rows}
