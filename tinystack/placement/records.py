"""What the placement rules hand back: plain frozen records, free of SQL and HTTP."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from tinystack.core import errors

INVENTORY_FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")


def capacity(total: int, reserved: int, allocation_ratio: float) -> int:
    """What may be allocated from one inventory: placement's ``int((total - reserved) * ratio)``."""
    return int((total - reserved) * allocation_ratio)


@dataclass(frozen=True)
class Provider:
    uuid: str
    name: str
    generation: int
    parent_uuid: str | None
    root_uuid: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class InventoryRecord:
    resource_class: str
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = 0  # 0: the total
    step_size: int = 1
    allocation_ratio: float = 1.0
    used: int = 0

    @functools.cached_property
    def capacity(self) -> int:  # cached: a scheduler reads it for many providers on every decision
        return capacity(self.total, self.reserved, self.allocation_ratio)

    def fields(self) -> dict[str, int | float]:
        return {name: getattr(self, name) for name in INVENTORY_FIELDS}


class ResourceSummary(NamedTuple):
    # A tuple, not a frozen dataclass: a candidate list builds thousands of these per request.
    capacity: int
    used: int

    @property
    def free(self) -> int:
        return self.capacity - self.used


@dataclass(slots=True)
class Candidate:
    """One way to satisfy a request: the amounts to claim on each provider, and what those providers hold."""

    allocations: dict[str, dict[str, int]]  # rp uuid -> resource class -> amount
    summaries: dict[str, dict[str, ResourceSummary]]  # rp uuid -> resource class -> capacity/used
    names: dict[str, str] = field(default_factory=dict)  # rp uuid -> name (the host, for compute nodes)
    rp_uuid: str = ""  # the (first) provider; for a single-provider candidate, the compute node

    def __post_init__(self) -> None:
        if not self.rp_uuid:
            self.rp_uuid = next(iter(self.allocations))


@dataclass(frozen=True)
class ProviderUsage:
    """One provider as a scheduler mirrors it: its generation, and each inventory with what is used of it."""

    uuid: str
    generation: int
    inventories: dict[str, InventoryRecord]
    traits: frozenset[str] | None = None  # None: not read with it (a claim's answer); what was known stands


@dataclass(frozen=True)
class Claim:
    """What a claim did, and the providers it touched as the claim left them (or found them, when refused):
    enough for a scheduler to keep its copy of their usage exact without another query. ``None`` for a
    provider means it no longer exists."""

    ok: bool
    providers: dict[str, ProviderUsage | None]


@dataclass(frozen=True)
class ConsumerAllocations:
    consumer_id: str
    project_id: str | None
    user_id: str | None
    generation: int | None  # None: the consumer does not exist
    allocations: dict[str, dict[str, int]]  # rp uuid -> resource class -> amount
    provider_generations: dict[str, int] = field(default_factory=dict)
    consumer_type: str | None = None


def concurrent_update(what: str) -> errors.Conflict:
    return errors.Conflict(f"{what} Please update the generation and try again.", code="placement.concurrent_update")
