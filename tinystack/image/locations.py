"""Image locations for operators: ``locations`` in the image view (rule ``get_image_location``) and the
JSON-patch operations on ``/locations`` (``set_image_location``, ``delete_image_location``), admin-only by
default as in Glance.

A location's URL names an object in one of the configured stores: ``file://<path>`` for a local store,
``tinystack://<store>/<key>`` otherwise. Adding one attaches data already in a store (an operator copied a
large file into the store's directory, say) that no other image owns: a queued image becomes active with
the data's size and hashes computed here, an active one gains a copy after its size and MD5 are checked.
Removing one deletes its data; an image's last location cannot go (delete the image instead).

Glance 2.17's location API does the same for services: ``POST /v2/images/{id}/locations`` (rule
``add_image_location``) attaches data to a ``queued`` image, checking it against the caller's
``validation_data`` hash before anything changes; ``GET /v2/images/{id}/locations`` (``fetch_image_location``)
lists them."""

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


# validation_data's hash algorithms and their digest sizes (Glance's add-location schema).
HASH_ALGOS = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}


def validation(body: Any) -> tuple[str, str | None, str | None]:
    """The URL and the optional (algorithm, hex digest) of an add-location body; 400 for anything else."""
    if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
        raise errors.BadRequest("The body is an object with a 'url' string.")
    unknown = set(body) - {"url", "validation_data"}
    if unknown:
        raise errors.BadRequest(f"Unknown key(s) in the body: {', '.join(sorted(unknown))}.")
    data = body.get("validation_data") or {}
    if not isinstance(data, dict) or set(data) - {"os_hash_algo", "os_hash_value"}:
        raise errors.BadRequest("validation_data takes only 'os_hash_algo' and 'os_hash_value'.")
    algo, value = data.get("os_hash_algo"), data.get("os_hash_value")
    if (algo is None) != (value is None):
        raise errors.BadRequest("os_hash_algo and os_hash_value are given together.")
    if algo is None:
        return body["url"], None, None
    if algo not in HASH_ALGOS or not isinstance(value, str):
        raise errors.BadRequest(f"os_hash_algo must be one of {', '.join(HASH_ALGOS)}.")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise errors.BadRequest(f"os_hash_value ({value}) is not a valid hexadecimal value") from None
    if len(raw) != HASH_ALGOS[algo]:
        raise errors.BadRequest(f"os_hash_value: ({value}) is not the correct size for ({algo}) "
                                f"(should be ({HASH_ALGOS[algo]}) bytes)")
    return body["url"], algo, value.lower()


class Locations:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def listing(self, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
        """``GET /v2/images/{id}/locations``."""
        with self.svc.session() as s:
            image = self._check(s, ctx, image_id, "fetch_image_location")
            return view(self.svc, image)

    async def add(self, ctx: RequestContext, image_id: str, body: Any) -> None:
        """``POST /v2/images/{id}/locations``: a queued image becomes active on data already in a store, once
        the data matches ``validation_data``; any refusal leaves the image as it was."""
        with self.svc.session() as s:
            image = self._check(s, ctx, image_id, "add_image_location")
            location_url, algo, expected = validation(body)
            if image.status != "queued":
                raise errors.Conflict(f"It's not allowed to add locations if image status is {image.status}.")
            disk_format = image.disk_format
        store, key = self._resolve(location_url)
        with self.svc.session() as s:
            if s.scalars(select(ImageLocation.image_id).where(ImageLocation.store == store.store_id,
                                                              ImageLocation.key == key)).first() is not None:
                raise errors.Conflict("That data already belongs to an image.")
        try:
            digest, other = await _digest(store, key, algo if algo not in (None, "md5", "sha512") else None)
        except ObjectNotFound:
            raise errors.BadRequest(f"Invalid location {location_url}: no such object.") from None
        except (StoreError, OSError) as exc:
            raise errors.BadRequest(f"Invalid location {location_url}: {exc}") from None
        got = {"md5": digest.md5, "sha512": digest.sha512}.get(algo or "", other)
        if expected is not None and got != expected:
            raise errors.BadRequest(f"The data at {location_url} does not match validation_data ({algo}).")
        inspection = await self.svc.data.inspect(store, key, disk_format, digest.size)

        def step(s: Session) -> None:
            image = self._check(s, ctx, image_id, "add_image_location")
            if image.status != "queued":
                raise errors.Conflict(f"It's not allowed to add locations if image status is {image.status}.")
            activate(image, digest, inspection)
            image.locations.append(ImageLocation(store=store.store_id, key=key, status="active", meta={}))

        await self.svc.write(step)

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
            digest, _ = await _digest(store, key)
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


async def _digest(store: StoreDriver, key: str, extra: str | None = None) -> tuple[transfer.Digest, str | None]:
    """Size and hashes of a stored object, read once; also its ``extra`` hash (an algorithm name) if asked."""
    hashers = [hashlib.md5(usedforsecurity=False), hashlib.sha512()]
    if extra is not None:
        hashers.append(hashlib.new(extra))
    size = 0
    async for chunk in store.read(key):
        size += len(chunk)
        await asyncio.to_thread(_feed, hashers, chunk)
    digest = transfer.Digest(size, hashers[0].hexdigest(), hashers[1].hexdigest())
    return digest, hashers[2].hexdigest() if extra is not None else None


def _feed(hashers: list[Any], chunk: bytes) -> None:
    for hasher in hashers:
        hasher.update(chunk)
