"""Block storage API: Cinder v3 routes with microversions, under ``/v3/{project_id}`` and (3.67) ``/v3``."""

from __future__ import annotations

from tinystack.core.auth import TokenValidator
from tinystack.core.lease import Lease, exclusive
from tinystack.core.web import Microversions, Route, ServiceApp, Version, nova_fault
from tinystack.volume.service import VolumeService

MIN_VERSION = Version(3, 0)
MAX_VERSION = Version(3, 67)


def routes(svc: VolumeService) -> list[Route]:
    from tinystack.volume.api import (
        attachments,
        backups,
        discovery,
        messages,
        misc,
        snapshots,
        transfers,
        types,
        versions,
        volumes,
    )
    from tinystack.volume.api.groups import GroupsAPI, GroupSnapshotsAPI, GroupTypesAPI

    return [*versions.routes(), *volumes.VolumesAPI(svc).routes(), *snapshots.SnapshotsAPI(svc).routes(),
            *types.TypesAPI(svc).routes(), *misc.MiscAPI(svc).routes(), *attachments.AttachmentsAPI(svc).routes(),
            *transfers.TransfersAPI(svc).routes(), *messages.MessagesAPI(svc).routes(),
            *discovery.DiscoveryAPI(svc).routes(), *GroupTypesAPI(svc).routes(), *GroupsAPI(svc).routes(),
            *GroupSnapshotsAPI(svc).routes(), *backups.BackupsAPI(svc).routes()]


def app(svc: VolumeService, validator: TokenValidator) -> ServiceApp:
    async def start() -> None:
        async with exclusive(Lease(svc.db, "volume.bootstrap")):  # one starting API process at a time makes the default type
            await svc.call(svc.types.bootstrap)
        await svc.controller.start()
        await svc.backup_controller.start()

    async def stop() -> None:
        await svc.backup_controller.stop()
        await svc.controller.stop()

    return ServiceApp("volume", routes(svc), nova_fault, validator=validator,
                      microversions=Microversions("volume", MIN_VERSION, MAX_VERSION,
                                                  unversioned_paths=("/", "/v3", "/v3/")),
                      on_startup=[start], on_cleanup=[stop])
