"""The typed commands the placement API parses requests into, and the results that are more than one record:
plain data, free of HTTP and SQL, so a handler parses, calls one service method and renders one view."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tinystack.placement.candidates import Request
from tinystack.placement.records import Candidate, InventoryRecord, ResourceSummary


@dataclass(frozen=True)
class ProviderQuery:
    """``GET /resource_providers`` filters; ``member_of`` items are (negated, any of these aggregates)."""

    uuid: str | None = None
    name: str | None = None
    in_tree: str | None = None
    member_of: Sequence[tuple[bool, list[str]]] = ()
    required: Sequence[str] = ()
    forbidden: Sequence[str] = ()
    resources: Mapping[str, int] | None = None


@dataclass(frozen=True)
class ProviderWrite:
    """A provider's create or update. ``parent_given``: the request named ``parent_provider_uuid`` (1.14+)."""

    name: str
    uuid: str | None = None
    parent_uuid: str | None = None
    parent_given: bool = False


@dataclass(frozen=True)
class InventoryWrite:
    """Inventories to write on one provider, at ``generation`` (None: the one read, for a POST without one).
    ``replace`` drops the classes not named."""

    rp_uuid: str
    generation: int | None
    inventories: Mapping[str, Mapping[str, int | float]]
    replace: bool = False


@dataclass(frozen=True)
class Inventories:
    generation: int
    inventories: dict[str, InventoryRecord]


@dataclass(frozen=True)
class Listed:
    """Names on a provider (traits, aggregates) and the provider's generation."""

    generation: int
    names: list[str]


@dataclass(frozen=True)
class CandidateQuery:
    """``GET /allocation_candidates``: the request groups, ``group_policy=isolate``, the limit, and which
    extras the microversion shows (every resource of a provider from 1.27, traits from 1.17)."""

    groups: Sequence[Request]
    isolate: bool = False
    limit: int | None = None
    all_resources: bool = False
    with_traits: bool = False


@dataclass(frozen=True)
class Candidates:
    found: list[Candidate]
    every: dict[str, dict[str, ResourceSummary]] | None = None
    traits: dict[str, list[str]] | None = None


@dataclass(frozen=True)
class ProviderAllocations:
    generation: int
    allocations: dict[str, dict[str, int]] = field(default_factory=dict)
