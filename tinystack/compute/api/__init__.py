"""Compute API: Nova v2.1 routes with microversions, and the app that starts the conductor."""

from __future__ import annotations

from tinystack.compute.service import ComputeService
from tinystack.core.auth import TokenValidator
from tinystack.core.lease import Lease, exclusive
from tinystack.core.web import Microversions, Route, ServiceApp, Version, nova_fault

MIN_VERSION = Version(2, 1)
MAX_VERSION = Version(2, 96)


def routes(svc: ComputeService) -> list[Route]:
    from tinystack.compute.api import (
        admin,
        aggregates,
        consoles,
        events,
        extensions,
        flavors,
        image_metadata,
        images,
        ips,
        keypairs,
        limits,
        netproxy,
        server_actions,
        servers,
        subresources,
        usage,
        versions,
        volumes,
    )

    return [*versions.routes(), *flavors.FlavorsAPI(svc).routes(),
            *images.ImagesAPI(svc).routes(), *keypairs.KeypairsAPI(svc).routes(),
            *limits.LimitsAPI(svc).routes(), *servers.ServersAPI(svc).routes(),
            *server_actions.ActionsAPI(svc).routes(), *subresources.SubAPI(svc).routes(),
            *admin.AdminAPI(svc).routes(), *aggregates.AggregatesAPI(svc).routes(), *usage.UsageAPI(svc).routes(),
            *volumes.VolumeAttachmentsAPI(svc).routes(), *ips.IpsAPI(svc).routes(),
            *netproxy.NetworkProxyAPI(svc).routes(), *extensions.ExtensionsAPI(svc).routes(),
            *image_metadata.ImageMetadataAPI(svc).routes(), *consoles.ConsolesAPI(svc).routes(),
            *events.ExternalEventsAPI(svc).routes()]


def app(svc: ComputeService, validator: TokenValidator) -> ServiceApp:
    async def start() -> None:
        async with exclusive(Lease(svc.db, "compute.bootstrap")):  # one starting API process at a time makes the flavors
            svc.flavors.bootstrap()
        await svc.conductor.start()

    async def stop() -> None:
        await svc.conductor.stop()

    return ServiceApp("compute", routes(svc), nova_fault, validator=validator,
                      microversions=Microversions("compute", MIN_VERSION, MAX_VERSION,
                                                  legacy_header="X-OpenStack-Nova-API-Version",
                                                  unversioned_paths=("/",)),
                      request_id_headers=("x-openstack-request-id", "x-compute-request-id"),
                      on_startup=[start], on_cleanup=[stop])
