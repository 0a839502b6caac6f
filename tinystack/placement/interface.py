"""What other services (compute and its scheduler) may call on placement: providers named after compute hosts,
and allocations by consumer (a server). ``PLACEMENT`` finds it in the registry, typed by this ``Protocol``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Protocol

from tinystack.core.service import ServiceKey
from tinystack.placement.records import Claim, ProviderUsage


class PlacementAPI(Protocol):
    def ensure_provider(self, host: str, inventory: Mapping[str, Mapping[str, int | float]],
                        traits: Iterable[str] = ()) -> str:
        """The provider named ``host`` with exactly this inventory and at least these traits; its uuid."""

    def provider_uuid(self, host: str) -> str | None:
        """The uuid of the provider named ``host``; None when there is none."""

    def provider_uuids(self) -> dict[str, str]:
        """Every provider's uuid by name."""

    def set_provider_aggregate(self, name: str, aggregate: str, member: bool) -> bool:
        """Put the provider named ``name`` in ``aggregate`` or take it out; False when there is no such provider."""

    def claim(self, consumer_id: str, project_id: str, user_id: str,
              allocations: Mapping[str, Mapping[str, int]]) -> bool:
        """Allocate for ``consumer_id`` (replacing what it had) by provider uuid; False when it does not fit."""

    def try_claim(self, consumer_id: str, project_id: str, user_id: str,
                  allocations: Mapping[str, Mapping[str, int]]) -> Claim:
        """``claim``, answering also with the providers involved as the claim left or found them."""

    def release(self, consumer_id: str) -> None:
        """Remove every allocation of ``consumer_id``; nothing to do when it has none."""

    def provider_usages(self, uuids: Collection[str] | None = None) -> dict[str, ProviderUsage]:
        """Providers (all, or these) with generation, inventories, usage and traits."""

    def provider_generations(self) -> dict[str, int]:
        """Every provider's generation by uuid: how a reader notices other processes' writes."""

    def watch(self, fn: Callable[[Mapping[str, int | None]], None]) -> None:
        """Call ``fn`` after every committed change to providers made in this process."""


PLACEMENT: ServiceKey[PlacementAPI] = ServiceKey("placement")
