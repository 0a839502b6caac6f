"""The image service: the one object the API and other services use. It owns metadata rules (create, list,
patch, delete, tags, (de)activation) and hands data and membership work to ``data`` and ``membership``."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tinystack.config import Config
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceBase
from tinystack.core.web import validate
from tinystack.image import access, drivers, listing, locations, patch, policies, quotas, schemas
from tinystack.image import settings as settings_mod
from tinystack.image.cache import ImageCache, Prefetcher
from tinystack.image.data import ImageData
from tinystack.image.drivers.base import StoreDriver
from tinystack.image.drivers.filesystem import FilesystemStore
from tinystack.image.imports import Imports
from tinystack.image.locations import Locations
from tinystack.image.membership import Membership
from tinystack.image.metadefs import Metadefs
from tinystack.image.models import Image, ImageMember, ImageProperty, ImageTag, ImageTask, utcnow
from tinystack.image.protections import PropertyProtections, Unprotected
from tinystack.image.sweeper import Sweeper
from tinystack.image.tasks import Tasks

MIGRATIONS = Path(__file__).parent / "migrations"
STAGING_STORE = "os_glance_staging_store"
log = logging.getLogger(__name__)

# Attributes a create request may not name at all (Glance's _disallowed_properties), checked before the schema.
_DISALLOWED = ("direct_url", "self", "file", "schema", "stores", "locations")
_IMAGE_SCHEMA = schemas.image()
_IN_FLIGHT = ("saving", "uploading", "importing")


def not_found(image_id: str) -> errors.NotFound:
    return errors.NotFound(f"No image found with ID {image_id}")


class ImageService(ServiceBase):
    def __init__(self, config: Config, db: Database, policy: PolicyEngine) -> None:
        super().__init__(db, policy)
        self.config = config
        self.settings = settings_mod.load(config)
        policy.register_defaults(policies.DEFAULTS)
        self.limits = quotas.Limits.from_settings(self.settings)
        self.stores: dict[str, StoreDriver] = {
            spec.id: drivers.make(spec, self.settings, config.state_dir) for spec in self.settings.stores}
        self.staging = FilesystemStore(STAGING_STORE, self.settings.staging_dir)
        pp = self.settings.property_protection_file
        self.protections: PropertyProtections | Unprotected = (
            PropertyProtections.from_file(pp, self.settings.property_protection_rule_format,
                                          lambda rule, creds: policy.check(rule, {}, creds))
            if pp is not None else Unprotected())
        self.data = ImageData(self)
        self.imports = Imports(self)
        self.members = Membership(self)
        self.sweeper = Sweeper(self)
        self.task_api = Tasks(self)
        self.metadefs = Metadefs(self)
        self.locations = Locations(self)
        self.cache: ImageCache | None = None
        self.prefetcher: Prefetcher | None = None
        if self.settings.image_cache_max_size > 0 and self.settings.image_cache_dir is not None:
            self.cache = ImageCache(self.settings.image_cache_dir, self.settings.image_cache_max_size)
            self.prefetcher = Prefetcher(self.cache, self.data.cache_source, self.data.with_data)

    # --- shared helpers -------------------------------------------------------------------------

    def store(self, store_id: str | None) -> StoreDriver:
        store_id = store_id or self.settings.default_store
        try:
            return self.stores[store_id]
        except KeyError:
            raise errors.BadRequest(f"Store for identifier {store_id} not found") from None

    def find(self, s: Session, ctx: RequestContext, image_id: str) -> tuple[Image, ImageMember | None]:
        """The image if the caller may see it, and the caller's membership; 404 otherwise."""
        image = s.get(Image, image_id)
        if image is None:
            raise not_found(image_id)
        membership = s.get(ImageMember, (image_id, ctx.project_id)) if ctx.project_id else None
        if not access.can_see(ctx, image, membership):
            raise not_found(image_id)
        return image, membership

    def enforce_on(self, ctx: RequestContext, rule: str, image: Image, membership: ImageMember | None) -> None:
        """``enforce`` against the image as Glance's rules see it (owner, visibility, the caller's membership)."""
        self.enforce(ctx, rule, access.target(ctx, image, membership))

    def readable(self, ctx: RequestContext) -> Callable[[str], bool]:
        """Whether the caller may read a property (property protections)."""
        creds = ctx.creds()
        return lambda name: self.protections.allowed(name, "read", creds)

    def usage(self, s: Session, owner: str | None) -> quotas.Usage:
        rows: list[tuple[str, int, int]] = [
            (st, int(n), int(b or 0)) for st, n, b in
            s.execute(select(Image.status, func.count(), func.coalesce(func.sum(Image.size), 0))
                      .where(Image.owner == owner).group_by(Image.status)).all()]
        count = sum(n for _, n, _ in rows)
        stored = sum(b for st, _, b in rows if st in ("active", "deactivated", "saving", "importing"))
        staged = sum(b for st, _, b in rows if st in ("uploading", "importing"))
        uploading = sum(n for st, n, _ in rows if st in _IN_FLIGHT)
        return quotas.Usage(count, stored, uploading, staged)

    # --- images ---------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, body: Any) -> Image:
        """A new queued image from a create request's body (also how compute and volume make theirs)."""
        return _created(ctx, self.retrying(self._creation(ctx, body)))

    async def create_async(self, ctx: RequestContext, body: Any) -> Image:
        """``create`` with its transaction on a worker thread, for a handler on the event loop."""
        return _created(ctx, await self.write(self._creation(ctx, body)))

    def _creation(self, ctx: RequestContext, body: Any) -> Callable[[Session], Image]:
        """Check the body, policy and protections; the transaction that then makes the image."""
        if not isinstance(body, dict):
            raise errors.BadRequest("Request body must be a JSON object.")
        for key in _DISALLOWED:
            if key in body:
                raise errors.BadRequest(f"Attribute '{key}' is read-only.")
        validate(body, _IMAGE_SCHEMA)
        for key in body:
            if key in schemas.READ_ONLY and key != "id":
                raise errors.BadRequest(f"Attribute '{key}' is read-only.")
            if key in schemas.RESERVED or key.startswith(schemas.RESERVED_PREFIX):
                raise errors.Forbidden(f"Attribute '{key}' is reserved.")
            if len(key) > 255:
                raise errors.BadRequest("Custom property should not be greater than 255 characters.")
        attrs = {k: body[k] for k in schemas.BASE_ATTRIBUTES if k in body}
        props = {k: v for k, v in body.items() if k not in schemas.BASE_ATTRIBUTES}
        for key in ("min_ram", "min_disk"):
            if attrs.get(key, 0) < 0:
                raise errors.BadRequest(f"Invalid value for '{key}': Cannot be a negative value.")
        tags = list(dict.fromkeys(attrs.pop("tags", [])))
        quotas.enforce_per_image(self.limits, properties=len(props), tags=len(tags))
        owner = attrs.pop("owner", ctx.project_id)
        visibility = attrs.pop("visibility", "shared")
        target = {"project_id": ctx.project_id, "owner": owner, "visibility": visibility}
        self.enforce(ctx, "add_image", target)
        self._check_visibility(ctx, visibility, target)
        creds = ctx.creds()
        for name in props:
            if not self.protections.allowed(name, "create", creds):
                raise errors.Forbidden(f"Attribute '{name}' is reserved.")
        image_id = attrs.pop("id", None) or str(uuid.uuid4())

        def step(s: Session) -> Image:
            now = utcnow()
            if s.get(Image, image_id) is not None:
                raise errors.Conflict(f"Image with identifier {image_id} already exists!")
            quotas.enforce("image_count_total", self.limits.image_count_total, self.usage(s, owner).image_count_total,
                           1)
            image = Image(id=image_id, name=attrs.get("name"), owner=owner, status="queued", visibility=visibility,
                          protected=attrs.get("protected", False), os_hidden=attrs.get("os_hidden", False),
                          disk_format=attrs.get("disk_format"), container_format=attrs.get("container_format"),
                          min_ram=attrs.get("min_ram", 0), min_disk=attrs.get("min_disk", 0),
                          created_at=now, updated_at=now)
            image.properties = [ImageProperty(name=k, value=v) for k, v in props.items()]
            image.tags = [ImageTag(value=t) for t in tags]
            image.locations = []
            s.add(image)
            return image

        return step

    def _check_visibility(self, ctx: RequestContext, visibility: str, target: Mapping[str, Any]) -> None:
        if visibility == "public" and not self.allowed(ctx, "publicize_image", target):
            raise errors.Forbidden("You are not authorized to complete publicize_image action.")
        if visibility == "community" and not self.allowed(ctx, "communitize_image", target):
            raise errors.Forbidden("You are not authorized to complete communitize_image action.")

    def get(self, ctx: RequestContext, image_id: str) -> Image:
        with self.session() as s:
            image, membership = self.find(s, ctx, image_id)
            if not self.allowed(ctx, "get_image", access.target(ctx, image, membership)):
                raise not_found(image_id)
            return image

    def list_images(self, ctx: RequestContext, params: Mapping[str, Any], getall: Any) -> tuple[list[Image], str | None]:
        """One page of images and the marker of the next page (None on the last)."""
        self.enforce(ctx, "get_images")
        q = listing.parse(params, getall, self.settings.limit_param_default, self.settings.api_limit_max)
        with self.session() as s:
            marker_values = None
            if q.marker is not None:
                try:
                    self.find(s, ctx, q.marker)
                except errors.NotFound:
                    raise errors.BadRequest(f"marker [{q.marker}] not found") from None
                marker_values = list(s.execute(listing.marker_statement(q, q.marker)).one())
            if q.limit == 0:
                return [], None
            rows = list(s.scalars(listing.statement(ctx, q, marker_values)).all())
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        return rows, (rows[-1].id if more and rows else None)

    async def update(self, ctx: RequestContext, image_id: str, changes: list[patch.Change]) -> Image:
        moves = [c for c in changes if c.name == "locations"]
        if moves:
            return await self._update_locations(ctx, image_id, changes)
        creds = ctx.creds()

        def step(s: Session) -> Image:
            image, membership = self.find(s, ctx, image_id)
            self.enforce_on(ctx, "modify_image", image, membership)
            readable = {p.name: p.value for p in image.properties if self.protections.allowed(p.name, "read", creds)}
            before = patch.Draft({k: getattr(image, k) for k in schemas.BASE_ATTRIBUTES if k not in ("tags", "id")},
                                 readable)
            before.attrs["tags"] = sorted(t.value for t in image.tags)
            after = patch.apply(before, changes)
            self._check_attr_changes(ctx, image, membership, before, after)
            self._check_property_changes(creds, before, after)
            hidden = len(image.properties) - len(readable)
            quotas.enforce_per_image(self.limits, properties=len(after.properties) + hidden,
                                     tags=len(after.attrs["tags"]))
            for key, value in after.attrs.items():
                if key != "tags" and value != before.attrs[key]:
                    setattr(image, key, value)
            if after.attrs["tags"] != before.attrs["tags"]:
                image.tags = [ImageTag(value=t) for t in after.attrs["tags"]]
            by_name = {p.name: p for p in image.properties}
            for name in before.properties.keys() - after.properties.keys():
                image.properties.remove(by_name[name])
            for name, value in after.properties.items():
                if name in by_name:
                    by_name[name].value = value
                else:
                    image.properties.append(ImageProperty(name=name, value=value))
            image.updated_at = utcnow()
            return image

        return await self.write(step)

    async def _update_locations(self, ctx: RequestContext, image_id: str, changes: list[patch.Change]) -> Image:
        if any(c.name != "locations" for c in changes):
            raise errors.BadRequest("Location changes cannot be combined with other changes in one request.")
        parsed = [locations.parse(c.op, c.value["path"], c.value["value"]) for c in changes]
        image = None
        for change in parsed:
            image = await self.locations.apply(ctx, image_id, change)
        assert image is not None
        return image

    def shows_locations(self, ctx: RequestContext, image: Image) -> bool:
        """Whether the caller sees an image's ``locations`` (``get_image_location``, admins by default)."""
        return self.allowed(ctx, "get_image_location", {"project_id": ctx.project_id, "owner": image.owner,
                                                         "visibility": image.visibility})

    def _check_attr_changes(self, ctx: RequestContext, image: Image, membership: ImageMember | None,
                            before: patch.Draft, after: patch.Draft) -> None:
        changed = {k for k, v in after.attrs.items() if v != before.attrs.get(k)}
        if "owner" in changed and not ctx.is_admin:
            raise errors.Forbidden("Owner can't be updated by non admin.")
        if "visibility" in changed:
            self._check_visibility(ctx, after.attrs["visibility"], access.target(ctx, image, membership))
        for key in ("disk_format", "container_format"):
            if key in changed and image.status not in ("queued", "importing"):
                raise errors.Forbidden(f"Attribute {key} can be only replaced for a queued image.")

    def _check_property_changes(self, creds: Mapping[str, Any], before: patch.Draft, after: patch.Draft) -> None:
        old, new = before.properties, after.properties
        for name in new:
            op = "create" if name not in old else "update" if new[name] != old[name] else None
            if op and not self.protections.allowed(name, op, creds):
                raise errors.Forbidden(f"Property '{name}' is protected")
        for name in old:
            if name not in new and not self.protections.allowed(name, "delete", creds):
                raise errors.Forbidden(f"Property '{name}' is protected")

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        def step(s: Session) -> list[tuple[str, str]]:
            image, membership = self.find(s, ctx, image_id)
            self.enforce_on(ctx, "delete_image", image, membership)
            if image.protected:
                raise errors.Forbidden(f"Image {image_id} is protected and cannot be deleted.")
            locations = [(loc.store, loc.key) for loc in image.locations]
            s.delete(image)
            s.execute(delete(ImageTask).where(ImageTask.image_id == image_id))
            return locations

        locations = await self.write(step)
        log.info("image %s deleted", image_id)
        await self.data.discard(locations)
        if self.cache is not None:
            cache = self.cache
            await asyncio.to_thread(lambda: (cache.evict(image_id), cache.dequeue(image_id)))

    async def set_active(self, ctx: RequestContext, image_id: str, active: bool) -> None:
        """Deactivate (``active=False``) or reactivate an image; repeating either is harmless."""
        action = "reactivate" if active else "deactivate"

        def step(s: Session) -> None:
            image, membership = self.find(s, ctx, image_id)
            self.enforce_on(ctx, action, image, membership)
            if image.status not in ("active", "deactivated"):
                raise errors.Forbidden(f"Not allowed to {action} image in status '{image.status}'")
            new_status = "active" if active else "deactivated"
            if image.status != new_status:
                image.status = new_status
                image.updated_at = utcnow()

        await self.write(step)

    # --- tags -----------------------------------------------------------------------------------

    async def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        if len(tag) > 255:
            raise errors.BadRequest("Tag is too long: at most 255 characters.")

        def step(s: Session) -> None:
            image, membership = self.find(s, ctx, image_id)
            self.enforce_on(ctx, "modify_image", image, membership)
            if tag in {t.value for t in image.tags}:
                return
            quotas.enforce_per_image(self.limits, tags=len(image.tags) + 1)
            image.tags.append(ImageTag(value=tag))
            image.updated_at = utcnow()

        await self.write(step)

    async def delete_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        def step(s: Session) -> None:
            image, membership = self.find(s, ctx, image_id)
            self.enforce_on(ctx, "modify_image", image, membership)
            found = [t for t in image.tags if t.value == tag]
            if not found:
                raise errors.NotFound(f"Tag {tag} not found")
            image.tags.remove(found[0])
            image.updated_at = utcnow()

        await self.write(step)

    # --- tasks and discovery --------------------------------------------------------------------

    def tasks(self, ctx: RequestContext, image_id: str) -> list[ImageTask]:
        with self.session() as s:
            image, membership = self.find(s, ctx, image_id)
            if not self.allowed(ctx, "get_image", access.target(ctx, image, membership)):
                raise not_found(image_id)
            return list(s.scalars(select(ImageTask).where(ImageTask.image_id == image_id)
                                  .order_by(ImageTask.created_at)).all())

    def project_usage(self, ctx: RequestContext) -> dict[str, dict[str, int]]:
        with self.session() as s:
            u = self.usage(s, ctx.project_id)
        lim = self.limits
        return {"image_count_total": {"usage": u.image_count_total, "limit": lim.image_count_total},
                "image_size_total": {"usage": u.image_size_total // 2**20, "limit": _mib(lim.image_size_total)},
                "image_stage_total": {"usage": u.image_stage_total // 2**20, "limit": _mib(lim.image_stage_total)},
                "image_count_uploading": {"usage": u.image_count_uploading, "limit": lim.image_count_uploading}}

    async def update_properties(self, ctx: RequestContext, image_id: str, set_: Mapping[str, str],
                          remove: Sequence[str] = ()) -> Image:
        """Set and remove custom properties in one change (compute's image metadata proxy)."""
        for name, value in set_.items():
            patch.check_value(name, value)
        changes = [patch.Change("remove", n) for n in remove] + [patch.Change("add", n, v) for n, v in set_.items()]
        return await self.update(ctx, image_id, changes)

    def store_list(self, detail: bool = False) -> list[dict[str, Any]]:
        out = []
        for store_id, driver in self.stores.items():
            entry: dict[str, Any] = {"id": store_id, "description": f"{driver.kind} store {store_id}"}
            if store_id == self.settings.default_store:
                entry["default"] = "true"
            if detail:
                entry.update(type=driver.kind, properties=driver.describe(), weight=0)
            out.append(entry)
        return out


def _created(ctx: RequestContext, image: Image) -> Image:
    log.info("image %s created by project %s", image.id, ctx.project_id)
    return image


def _mib(limit: int) -> int:
    return limit if limit < 0 else limit // 2**20
