"""Glance's cache API (2.14): ``/v2/cache`` lists this node's cached and queued images, ``PUT`` queues one
for prefetching, ``DELETE`` drops one or clears the cache and/or the queue. Admin only (``cache_*`` rules)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response
from tinystack.image.cache import ImageCache
from tinystack.image.service import ImageService, not_found

CLEAR_TARGET = "x-image-cache-clear-target"


class CacheAPI:
    def __init__(self, svc: ImageService, cache: ImageCache) -> None:
        self.svc = svc
        self.cache = cache

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v2/cache", self.state),
            Route("DELETE", "/v2/cache", self.clear),
            Route("PUT", "/v2/cache/{image_id}", self.queue),
            Route("DELETE", "/v2/cache/{image_id}", self.delete),
        ]

    async def state(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "cache_list")
        cached = await asyncio.to_thread(self.cache.cached)
        queued = await asyncio.to_thread(self.cache.queued)
        return json_response({"cached_images": [e.view() for e in cached], "queued_images": queued})

    async def queue(self, request: web.Request) -> web.Response:
        c, image_id = ctx(request), request.match_info["image_id"]
        with self.svc.session() as s:
            image, membership = self.svc.find(s, c, image_id)
            self.svc.enforce_on(c, "cache_image", image, membership)
            if image.status != "active":
                raise errors.BadRequest("Only images with status active can be targeted for queueing")
        if not await asyncio.to_thread(self.cache.is_cached, image_id):
            await asyncio.to_thread(self.cache.queue, image_id)
            if self.svc.prefetcher is not None:
                self.svc.prefetcher.wake()
        return empty(202)

    async def delete(self, request: web.Request) -> web.Response:
        c, image_id = ctx(request), request.match_info["image_id"]
        try:
            with self.svc.session() as s:
                image, membership = self.svc.find(s, c, image_id)
                self.svc.enforce_on(c, "cache_delete", image, membership)
        except errors.NotFound:
            # An image deleted meanwhile may still have a cache entry to drop; otherwise it is unknown.
            self.svc.enforce(c, "cache_delete")
            if not await asyncio.to_thread(self.cache.is_known, image_id):
                raise not_found(image_id) from None
        await asyncio.to_thread(lambda: (self.cache.evict(image_id), self.cache.dequeue(image_id)))
        return empty()

    async def clear(self, request: web.Request) -> web.Response:
        self.svc.enforce(ctx(request), "cache_delete")
        target = request.headers.get(CLEAR_TARGET, "").strip().lower()
        if target not in ("", "cache", "queue"):
            raise errors.BadRequest(f"If provided '{CLEAR_TARGET}' must be 'cache', 'queue' or empty string.")
        if target in ("", "cache"):
            await asyncio.to_thread(self.cache.clear_cached)
        if target in ("", "queue"):
            await asyncio.to_thread(self.cache.clear_queued)
        return empty()
