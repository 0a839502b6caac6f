"""Image locations for operators: ``locations`` in the image view (rule ``get_image_location``) and the
JSON-patch operations on ``/locations`` (``set_image_location``, ``delete_image_location``), admin-only by
default as in Glance.

A location's URL names an object in one of the configured stores: ``file://<path>`` for a local store,
``tinystack://<store>/<key>`` otherwise. Adding one attaches data already in a store (an operator copied a
large file into the store's directory, say) that no other image owns: a queued image becomes active with
the data's size and hashes computed here, an active one gains a copy after its size and MD5 are checked.
Removing one deletes its data; an image's last location cannot go (delete the image instead)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.image import access, formats, transfer
from tinystack.image.data import activate
from tinystack.image.drivers.base import ObjectNotFound, StoreDriver, StoreError
from tinystack.image.models import Image, ImageLocation, utcnow

if TYPE_CHECKING:
    from tinystack.image.service import ImageService


@dataclass(frozen=True)
class LocationChange:
    op: str  # add or remove
    index: int | None  # None: the end ("-")
    url: str | None = None


def url(store: StoreDriver | None, loc: ImageLocation) -> str:
    path = store.local_path(loc.key) if store is not None else None
    return f"file://{path}" if path is not None else f"tinystack://{loc.store}/{loc.key}"


def view(svc: ImageService, image: Image) -> list[dict[str, Any]]:
    return [{"url": url(svc.stores.get(loc.store), loc), "metadata": {"store": loc.store}}
            for loc in image.locations if loc.status == "active"]


def parse(op: str, parts: list[str], value: Any) -> LocationChange:
    """One ``/locations/...`` operation of a patch; 400 for the forms Glance does not take either."""
    if len(parts) != 1 or op not in ("add", "remove"):
        raise errors.BadRequest("Only adding one location (/locations/N or /locations/-) and removing one "
                                "(/locations/N) are supported.")
    index: int | None = None
    if parts[0] != "-":
        try:
            index = int(parts[0])
        except ValueError:
            raise errors.BadRequest(f"Invalid location index {parts[0]!r}.") from None
        if index < 0:
            raise errors.BadRequest(f"Invalid location index {parts[0]!r}.")
    if op == "remove":
        if index is None:
            raise errors.BadRequest("A location to remove is named by its index.")
        return LocationChange(op, index)
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not isinstance(
            value.get("metadata", {}), dict):
        raise errors.BadRequest("A location is an object with a 'url' string and a 'metadata' object.")
    return LocationChange(op, index, value["url"])


class Locations:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def _resolve(self, location_url: str) -> tuple[StoreDriver, str]:
        """The store and key a URL names; 400 when it names nothing tinystack stores."""
        parts = urlsplit(location_url)
        if parts.scheme == "tinystack":
            store = self.svc.stores.get(parts.netloc)
            key = unquote(parts.path.lstrip("/"))
            if store is not None and key:
                return store, key
        elif parts.scheme == "file" and not parts.netloc:
            for store in self.svc.stores.values():
                probe = store.local_path("probe")
                if probe is not None and unquote(parts.path).startswith(f"{probe.parent}/"):
                    return store, unquote(parts.path)[len(str(probe.parent)) + 1:]
        raise errors.BadRequest(f"Invalid location {location_url}: it names no object in a configured store.")

    async def apply(self, ctx: RequestContext, image_id: str, change: LocationChange) -> Image:
        if change.op == "remove":
            return await self._remove(ctx, image_id, change)
        assert change.url is not None
        store, key = self._resolve(change.url)
        with self.svc.session() as s:
            image = self._check(s, ctx, image_id, "set_image_location")
            if image.status not in ("queued", "active"):
                raise errors.Conflict(f"A location cannot be added to an image in status {image.status}.")
            owner = s.scalars(select(ImageLocation.image_id).where(ImageLocation.store == store.store_id,
                                                                   ImageLocation.key == key)).first()
            if owner is not None:
                raise errors.Conflict("That data already belongs to an image.")
            expected = (image.size, image.checksum) if image.status == "active" else None
            disk_format = image.disk_format
        try:
            digest = await _digest(store, key)
        except ObjectNotFound:
            raise errors.BadRequest(f"Invalid location {change.url}: no such object.") from None
        except (StoreError, OSError) as exc:
            raise errors.BadRequest(f"Invalid location {change.url}: {exc}") from None
        if expected is not None and (digest.size, digest.md5) != expected:
            raise errors.BadRequest("The data at that location is not this image's data (size or checksum differ).")
        inspection = (await self.svc.data.inspect(store, key, disk_format, digest.size) if expected is None
                      else formats.Inspection(virtual_size=None))

        def step(s: Session) -> Image:
            image = self._check(s, ctx, image_id, "set_image_location")
            if image.status == "queued" and expected is None:
                activate(image, digest, inspection)
            elif image.status != "active" or expected is None:
                raise errors.Conflict("The image changed while its location was being added.")
            new = ImageLocation(store=store.store_id, key=key, status="active", meta={})
            active = [loc for loc in image.locations if loc.status == "active"]
            at = len(active) if change.index is None else min(change.index, len(active))
            # Positions count active locations; the list keeps insertion order, so rebuild it in the new order.
            others = [loc for loc in image.locations if loc.status != "active"]
            image.locations = [*active[:at], new, *active[at:], *others]
            image.updated_at = utcnow()
            return image

        return await self.svc.write(step)

    async def _remove(self, ctx: RequestContext, image_id: str, change: LocationChange) -> Image:
        def step(s: Session) -> tuple[Image, tuple[str, str]]:
            image = self._check(s, ctx, image_id, "delete_image_location")
            active = [loc for loc in image.locations if loc.status == "active"]
            assert change.index is not None
            if change.index >= len(active):
                raise errors.BadRequest(f"Invalid location index {change.index}.")
            if len(active) == 1:
                raise errors.Forbidden("Cannot remove last location in the image.")
            gone = active[change.index]
            image.locations.remove(gone)
            image.updated_at = utcnow()
            return image, (gone.store, gone.key)

        image, gone = await self.svc.write(step)
        await self.svc.data.discard([gone])
        return image

    def _check(self, s: Session, ctx: RequestContext, image_id: str, rule: str) -> Image:
        image, membership = self.svc.find(s, ctx, image_id)
        self.svc.enforce(ctx, rule, access.target(ctx, image, membership))
        return image


async def _digest(store: StoreDriver, key: str) -> transfer.Digest:
    """Size and hashes of a stored object, read once."""
    md5, sha512, size = hashlib.md5(usedforsecurity=False), hashlib.sha512(), 0
    async for chunk in store.read(key):
        size += len(chunk)
        await asyncio.to_thread(_feed, md5, sha512, chunk)
    return transfer.Digest(size, md5.hexdigest(), sha512.hexdigest())


def _feed(md5: Any, sha512: Any, chunk: bytes) -> None:
    md5.update(chunk)
    sha512.update(chunk)
