"""Placement records rendered as the placement API's JSON, by microversion."""

from __future__ import annotations

from typing import Any

from tinystack.core.web import Version
from tinystack.placement.commands import Candidates, Listed, ProviderAllocations
from tinystack.placement.records import Candidate, ConsumerAllocations, InventoryRecord, Provider, ResourceSummary

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


def consumer(c: ConsumerAllocations, v: Version) -> dict[str, Any]:
    """``GET /allocations/{consumer}``: project, user (1.12) and generation (1.28) only of a consumer that exists."""
    out: dict[str, Any] = {"allocations": consumer_allocations(c.allocations, c.provider_generations)}
    if v >= V(1, 12) and c.generation is not None:
        out["project_id"], out["user_id"] = c.project_id, c.user_id
    if v >= V(1, 28) and c.generation is not None:
        out["consumer_generation"] = c.generation
    return out


def provider_allocations(a: ProviderAllocations) -> dict[str, Any]:
    return {"resource_provider_generation": a.generation,
            "allocations": {c: {"resources": r} for c, r in a.allocations.items()}}


def provider_usages(generation: int, used: dict[str, int]) -> dict[str, Any]:
    return {"resource_provider_generation": generation, "usages": used}


def aggregates(listed: Listed, v: Version) -> dict[str, Any]:
    """A provider's aggregates, with its generation from 1.19."""
    out: dict[str, Any] = {"aggregates": listed.names}
    if v >= V(1, 19):
        out["resource_provider_generation"] = listed.generation
    return out


def traits(listed: Listed) -> dict[str, Any]:
    return {"traits": listed.names, "resource_provider_generation": listed.generation}


def inventory_of(generation: int, rec: InventoryRecord) -> dict[str, Any]:
    return {"resource_provider_generation": generation, **inventory(rec)}


def resource_class(name: str) -> dict[str, Any]:
    return {"name": name, "links": [{"rel": "self", "href": f"/resource_classes/{name}"}]}


def candidates(result: Candidates, v: Version) -> dict[str, Any]:
    """``GET /allocation_candidates``: each way to allocate, and a summary of every provider involved."""
    summaries: dict[str, Any] = {}
    for c in result.found:
        for u, res in c.summaries.items():
            entry = summaries.setdefault(u, {"resources": {}})
            entry["resources"].update(summary(result.every[u] if result.every is not None else res))
            if result.traits is not None:
                entry["traits"] = result.traits[u]
    return {"allocation_requests": [allocation_request(c, v) for c in result.found], "provider_summaries": summaries}
