"""Placement API 1.x: routes as data, the microversion range, and placement's fault format."""

from __future__ import annotations

from tinystack.core.auth import TokenValidator
from tinystack.core.web import Route, ServiceApp, placement_fault
from tinystack.placement.service import PlacementService


def routes(svc: PlacementService) -> list[Route]:
    from tinystack.placement.api import allocations, candidates, inventories, names, providers, root

    return [*root.routes(), *providers.ProvidersAPI(svc).routes(), *inventories.InventoriesAPI(svc).routes(),
            *allocations.AllocationsAPI(svc).routes(), *names.NamesAPI(svc).routes(),
            *candidates.CandidatesAPI(svc).routes()]


def app(svc: PlacementService, validator: TokenValidator) -> ServiceApp:
    from tinystack.placement.api.root import MICROVERSIONS

    return ServiceApp("placement", routes(svc), placement_fault, validator=validator, microversions=MICROVERSIONS)
