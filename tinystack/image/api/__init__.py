"""Image API: Glance v2 routes, its version document, and the app with the transfer sweeper."""

from __future__ import annotations

import asyncio
import contextlib

from tinystack.core.auth import TokenValidator
from tinystack.core.web import Route, ServiceApp
from tinystack.image import metadef_seed
from tinystack.image.api.faults import glance_fault
from tinystack.image.service import ImageService


def routes(svc: ImageService) -> list[Route]:
    from tinystack.image.api import cache, data, discovery, images, members, metadefs, tasks, versions

    # The cache API exists only where there is a cache (Glance: image_cache_dir); versions say so too.
    cached = [*cache.CacheAPI(svc, svc.cache).routes()] if svc.cache is not None else []
    return [*versions.routes(svc.cache is not None), *images.ImagesAPI(svc).routes(), *data.DataAPI(svc).routes(),
            *members.MembersAPI(svc).routes(), *discovery.DiscoveryAPI(svc).routes(),
            *tasks.TasksAPI(svc).routes(), *metadefs.MetadefsAPI(svc).routes(), *cached]


def app(svc: ImageService, validator: TokenValidator) -> ServiceApp:
    sweeper: list[asyncio.Task[None]] = []

    async def start() -> None:
        await asyncio.to_thread(metadef_seed.load, svc)
        sweeper.append(asyncio.get_running_loop().create_task(svc.sweeper.run()))
        if svc.prefetcher is not None:
            sweeper.append(asyncio.get_running_loop().create_task(svc.prefetcher.run()))
            svc.prefetcher.wake()  # images queued before a restart

    async def stop() -> None:
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await svc.imports.stop()

    return ServiceApp("image", routes(svc), glance_fault, validator=validator, on_startup=[start], on_cleanup=[stop])
