"""Placement records rendered as the placement API's JSON, by microversion."""

from __future__ import annotations

from typing import Any

from tinystack.core.web import Version
from tinystack.placement.records import Candidate, InventoryRecord, Provider, ResourceSummary

V = Version


def provider(rp: Provider, v: Version) -> dict[str, Any]:
    base = f"/resource_providers/{rp.uuid}"
    links = [{"rel": "self", "href": base}, {"rel": "inventories", "href": f"{base}/inventories"},
             {"rel": "usages", "href": f"{base}/usages"}]
    if v >= V(1, 1):
        links.append({"rel": "aggregates", "href": f"{base}/aggregates"})
    if v >= V(1, 6):
        links.append({"rel": "traits", "href": f"{base}/traits"})
    if v >= V(1, 11):
        links.append({"rel": "allocations", "href": f"{base}/allocations"})
    out: dict[str, Any] = {"uuid": rp.uuid, "name": rp.name, "generation": rp.generation, "links": links}
    if v >= V(1, 14):
        out["parent_provider_uuid"] = rp.parent_uuid
        out["root_provider_uuid"] = rp.root_uuid
    return out


def inventory(rec: InventoryRecord) -> dict[str, Any]:
    return rec.fields()


def inventories(generation: int, recs: dict[str, InventoryRecord]) -> dict[str, Any]:
    return {"resource_provider_generation": generation, "inventories": {rc: inventory(r) for rc, r in recs.items()}}


def summary(resources: dict[str, ResourceSummary]) -> dict[str, Any]:
    return {rc: {"capacity": r.capacity, "used": r.used} for rc, r in sorted(resources.items())}


def allocation_request(c: Candidate, v: Version) -> dict[str, Any]:
    if v >= V(1, 12):
        return {"allocations": {u: {"resources": dict(r)} for u, r in c.allocations.items()}}
    return {"allocations": [{"resource_provider": {"uuid": u}, "resources": dict(r)} for u, r in c.allocations.items()]}


def consumer_allocations(allocs: dict[str, dict[str, int]], gens: dict[str, int]) -> dict[str, Any]:
    return {u: {"generation": gens.get(u), "resources": r} for u, r in allocs.items()}
