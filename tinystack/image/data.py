"""Image data: upload, staging for import, download, removal. An image only becomes ``active`` once its
data is complete, hashed, durable and inspected; any failure removes the partial data and puts the image
back to ``queued``."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.image import formats, quotas, transfer
from tinystack.image.drivers.base import StoreDriver, StoreError, StoreFull
from tinystack.image.errors import InvalidImageData, QuotaExceeded
from tinystack.image.models import Image, ImageLocation, utcnow

if TYPE_CHECKING:
    from tinystack.image.service import ImageService

log = logging.getLogger(__name__)
HEARTBEAT_EVERY = 10.0
GLANCE_DIRECT = "glance-direct"


@dataclass(frozen=True)
class DataHandle:
    """How to send an image's data: from ``path`` when the store is local (or the cache holds a copy), else
    through ``read``."""

    size: int
    checksum: str | None
    path: Path | None
    read: Callable[[int, int | None], AsyncIterator[bytes]]
    image_id: str = ""


@dataclass(frozen=True)
class _Begun:
    disk_format: str | None
    budget: int | None  # bytes the caller may still send (quota and size cap), None when unlimited


class ImageData:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    # --- bookkeeping ----------------------------------------------------------------------------

    def heartbeat(self, image_id: str) -> Callable[[int], None]:
        last = [time.monotonic()]

        def beat(_done: int) -> None:
            if time.monotonic() - last[0] >= HEARTBEAT_EVERY:
                last[0] = time.monotonic()
                with self.svc.session() as s:
                    s.execute(update(Image).where(Image.id == image_id).values(transfer_heartbeat=time.time()))

        return beat

    def restore(self, image_id: str, current: str, to: str) -> None:
        with self.svc.session() as s:
            s.execute(update(Image).where(Image.id == image_id, Image.status == current)
                      .values(status=to, transfer_heartbeat=None, updated_at=utcnow()))

    def _begin(self, ctx: RequestContext, image_id: str, to_status: str, size_hint: int | None) -> _Begun:
        """Check the caller, state and quotas, then claim the image (queued -> ``to_status``)."""
        staging = to_status == "uploading"
        with self.svc.session() as s:
            image, membership = self.svc.find(s, ctx, image_id)
            self.svc.enforce_on(ctx, "modify_image" if staging else "upload_image", image, membership)
            if image.status != "queued":
                raise errors.Conflict(f"Image status transition from {image.status} to {to_status} is not allowed")
            if not staging and not (image.disk_format and image.container_format):
                raise errors.BadRequest("Properties disk_format, container_format must be set prior to saving data.")
            limits, usage = self.svc.limits, self.svc.usage(s, image.owner)
            quotas.enforce("image_count_uploading", limits.image_count_uploading, usage.image_count_uploading, 1)
            if size_hint is not None and 0 <= limits.image_size_cap < size_hint:
                raise QuotaExceeded(f"The incoming image is too large: {size_hint} > {limits.image_size_cap}")
            resource, limit, used = (("image_stage_total", limits.image_stage_total, usage.image_stage_total)
                                     if staging else
                                     ("image_size_total", limits.image_size_total, usage.image_size_total))
            quotas.enforce(resource, limit, used, size_hint or 0)
            caps = [c for c in (quotas.remaining(limit, used), limits.image_size_cap) if c is not None and c >= 0]
            image.status = to_status
            image.transfer_heartbeat = time.time()
            image.updated_at = utcnow()
            return _Begun(image.disk_format, min(caps) if caps else None)

    async def _receive(self, store: StoreDriver, image_id: str, source: AsyncIterator[bytes], budget: int | None,
                       size_hint: int | None) -> tuple[transfer.Digest, str]:
        writer = store.writer(image_id, size_hint)
        try:
            digest = await transfer.receive(source, writer, budget, self.heartbeat(image_id))
            if size_hint is not None and digest.size != size_hint:
                raise errors.BadRequest(f"Image data was truncated: expected {size_hint} bytes, got {digest.size}.")
            return digest, await writer.commit()
        except BaseException as exc:
            await writer.abort()
            _reraise(exc)
            raise

    async def inspect(self, store: StoreDriver, location: str, disk_format: str | None,
                       size: int) -> formats.Inspection:
        path = store.local_path(location)
        if path is not None:
            return await formats.inspect(path, disk_format, size, self.svc.settings.require_image_format_match)
        if not formats.needs_qemu_img(disk_format):
            return formats.Inspection(virtual_size=size if disk_format in ("raw", "iso") else None)
        # A remote store: qemu-img reads the header (and a VMDK's footer) of a sparse local copy holding the
        # object's first and last bytes, so the safety checks see what a full copy would show.
        probe = self.svc.staging.directory / f".probe-{location}"
        try:
            await _fetch_ends(store, location, size, probe)
            return await formats.inspect(probe, disk_format, size, self.svc.settings.require_image_format_match)
        finally:
            probe.unlink(missing_ok=True)

    # --- upload ---------------------------------------------------------------------------------

    async def upload(self, ctx: RequestContext, image_id: str, source: AsyncIterator[bytes],
                     size_hint: int | None = None, store_id: str | None = None) -> None:
        """``PUT /v2/images/{id}/file``: stream ``source`` into a store and make the image active."""
        store = self.svc.store(store_id)
        begun = self._begin(ctx, image_id, "saving", size_hint)
        try:
            digest, location = await self._receive(store, image_id, source, begun.budget, size_hint)
            try:
                inspection = await self.inspect(store, location, begun.disk_format, digest.size)
            except BaseException as exc:
                await store.delete(location)
                _reraise(exc)
                raise
        except BaseException:
            self.restore(image_id, "saving", "queued")
            raise
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            if image is not None and image.status == "saving":
                activate(image, digest, inspection)
                image.locations.append(ImageLocation(store=store.store_id, key=location, status="active", meta={}))
                log.info("image %s active: %d bytes in store %s", image_id, digest.size, store.store_id)
                return
        await store.delete(location)
        raise errors.Gone(f"Image {image_id} could not be found after upload. The image may have been deleted "
                          "during the upload, cleaning up the chunks uploaded.")

    # --- glance-direct import -------------------------------------------------------------------

    async def stage(self, ctx: RequestContext, image_id: str, source: AsyncIterator[bytes],
                    size_hint: int | None = None) -> None:
        """``PUT /v2/images/{id}/stage``: keep the data in the staging area; the image becomes ``uploading``."""
        if GLANCE_DIRECT not in self.svc.settings.enabled_import_methods:
            raise errors.NotFound("'glance-direct' method is not available at this site.")
        begun = self._begin(ctx, image_id, "uploading", size_hint)
        staging = self.svc.staging
        try:
            digest, location = await self._receive(staging, image_id, source, begun.budget, size_hint)
        except BaseException:
            self.restore(image_id, "uploading", "queued")
            raise
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            if image is not None and image.status == "uploading":
                image.size = digest.size
                image.transfer_heartbeat = None
                image.locations.append(ImageLocation(store=staging.store_id, key=location, status="staged",
                                                     meta={"checksum": digest.md5, "os_hash_value": digest.sha512}))
                return
        await staging.delete(location)
        raise errors.Gone(f"Image {image_id} could not be found after staging.")

    # --- download and removal -------------------------------------------------------------------

    def download(self, ctx: RequestContext, image_id: str) -> DataHandle | None:
        """What ``GET /v2/images/{id}/file`` sends; None when the image has no data (a 204)."""
        with self.svc.session() as s:
            image, membership = self.svc.find(s, ctx, image_id)
            if image.status == "deactivated" and not ctx.is_admin:
                raise errors.Forbidden("The requested image has been deactivated. Image data download is forbidden.")
            self.svc.enforce_on(ctx, "download_image", image, membership)
            for loc in image.locations:
                store = self.svc.stores.get(loc.store)
                if loc.status == "active" and store is not None:
                    path = store.local_path(loc.key)
                    cache = self.svc.cache
                    if path is None and cache is not None and image.checksum:
                        path = cache.lookup(image.id, image.checksum)
                    return DataHandle(size=image.size or 0, checksum=image.checksum, path=path,
                                      read=functools.partial(store.read, loc.key), image_id=image.id)
        return None

    def with_data(self) -> set[str]:
        """The ids of images that have data to serve (active or deactivated)."""
        with self.svc.session() as s:
            return set(s.scalars(select(Image.id).where(Image.status.in_(("active", "deactivated")))).all())

    def cache_source(self, image_id: str) -> tuple[int, str, Callable[[], AsyncIterator[bytes]]] | None:
        """What the cache prefetcher copies: the image's size, checksum and data; None unless it is active."""
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            if image is None or image.status != "active" or not image.checksum:
                return None
            for loc in image.locations:
                store = self.svc.stores.get(loc.store)
                if loc.status == "active" and store is not None:
                    return image.size or 0, image.checksum, functools.partial(store.read, loc.key)
        return None

    async def discard(self, locations: list[tuple[str, str]]) -> None:
        """Delete data no image refers to any more; a failure leaves it to the sweeper."""
        for store_id, key in locations:
            store = self.svc.staging if store_id == self.svc.staging.store_id else self.svc.stores.get(store_id)
            if store is None:
                continue
            try:
                await store.delete(key)
            except StoreError as exc:
                log.warning("could not delete %s from store %s: %s", key, store_id, exc)

    async def delete_from_store(self, ctx: RequestContext, store_id: str, image_id: str) -> None:
        """``DELETE /v2/stores/{store}/{image}``: drop one copy; the last copy cannot go this way."""
        if store_id not in self.svc.stores:
            raise errors.NotFound(f"Unknown store {store_id}.")
        with self.svc.session() as s:
            image, membership = self.svc.find(s, ctx, image_id)
            self.svc.enforce_on(ctx, "delete_image_location", image, membership)
            if image.status != "active":
                raise errors.Conflict("It's not allowed to remove image data from store if image status is not "
                                      "'active'")
            active = [loc for loc in image.locations if loc.status == "active"]
            mine = [loc for loc in active if loc.store == store_id]
            if not mine:
                raise errors.NotFound(f"Image {image_id} is not in store {store_id}.")
            if len(active) == len(mine):
                raise errors.Forbidden("Cannot delete image data from the only store containing it. Consider "
                                       "deleting the image instead.")
            gone = [(loc.store, loc.key) for loc in mine]
            for loc in mine:
                image.locations.remove(loc)
            image.updated_at = utcnow()
        await self.discard(gone)

PROBE_HEAD = 16 * 1024 * 1024
PROBE_TAIL = 1024 * 1024


async def _fetch_ends(store: StoreDriver, location: str, size: int, probe: Path) -> None:
    """Write the first PROBE_HEAD and last PROBE_TAIL bytes of an object into a sparse file of its size."""
    with probe.open("wb") as f:
        f.truncate(size)
        spans = [(0, min(size, PROBE_HEAD))]
        if size > PROBE_HEAD:
            tail = max(PROBE_HEAD, size - PROBE_TAIL)
            spans.append((tail, size - tail))
        for start, length in spans:
            f.seek(start)
            async for chunk in store.read(location, start, length):
                f.write(chunk)


def activate(image: Image, digest: transfer.Digest, inspection: formats.Inspection) -> None:
    image.status = "active"
    image.size = digest.size
    image.checksum = digest.md5
    image.os_hash_algo = "sha512"
    image.os_hash_value = digest.sha512
    image.virtual_size = inspection.virtual_size
    image.transfer_heartbeat = None
    image.updated_at = utcnow()


def _reraise(exc: BaseException) -> None:
    """Raise the HTTP error Glance answers ``exc`` with, if it differs from ``exc``; else return."""
    translated = _translate(exc)
    if translated is not exc:
        raise translated from exc


def _translate(exc: BaseException) -> BaseException:
    """Store and inspection failures as the HTTP errors Glance answers with."""
    if isinstance(exc, transfer.TooLarge):
        return QuotaExceeded(f"Denying attempt to upload image because it exceeds the quota or size cap of "
                             f"{exc.limit} bytes.")
    if isinstance(exc, StoreFull):
        return QuotaExceeded(f"Image storage media is full: {exc}")
    if isinstance(exc, StoreError):
        return errors.ServiceUnavailable(str(exc))
    if isinstance(exc, formats.UnsafeImage):
        return InvalidImageData(str(exc))
    if isinstance(exc, transfer.SourceError):
        return errors.BadRequest(f"Image data could not be read: {exc}")
    return exc
