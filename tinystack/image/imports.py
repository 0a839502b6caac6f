"""Interoperable image import, glance-direct: data staged by ``PUT /stage`` is copied into the requested
stores in the background and recorded as a task (``GET /v2/images/{id}/tasks``). A failed import leaves
the staged data for a retry, except data that failed inspection, which is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.image import formats, quotas, transfer
from tinystack.image.data import activate
from tinystack.image.drivers.base import StoreDriver, StoreError
from tinystack.image.models import Image, ImageLocation, ImageTask, utcnow

if TYPE_CHECKING:
    from tinystack.image.service import ImageService


class Imports:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc
        self.data = svc.data
        self._background: set[asyncio.Task[None]] = set()

    def _import_stores(self, body: Mapping[str, Any], header_store: str | None) -> tuple[list[str], bool]:
        if body.get("all_stores"):
            if body.get("stores"):
                raise errors.BadRequest("All_stores parameter can't be used with x-image-meta-store header or "
                                        "stores parameter")
            stores = list(self.svc.stores)
        else:
            stores = list(dict.fromkeys(body.get("stores") or [header_store or self.svc.settings.default_store]))
        for store_id in stores:
            if store_id not in self.svc.stores:
                raise errors.Conflict(f"Store for identifier {store_id} not found")
        return stores, bool(body.get("all_stores_must_succeed", True))

    def import_image(self, ctx: RequestContext, image_id: str, body: Mapping[str, Any], request_id: str,
                     header_store: str | None = None) -> None:
        """``POST /v2/images/{id}/import``: check and record the request; the copy runs in the background."""
        method = body["method"]["name"]
        if method not in self.svc.settings.enabled_import_methods:
            raise errors.BadRequest(f"Unknown import method name '{method}'.")
        stores, must_succeed = self._import_stores(body, header_store)
        with self.svc.session() as s:
            image, membership = self.svc.find(s, ctx, image_id)
            self.svc.enforce_on(ctx, "modify_image", image, membership)
            staged = [loc for loc in image.locations if loc.status == "staged"]
            if image.status != "uploading" or not staged:
                raise errors.Conflict("Image needs to be staged before 'glance-direct' method can be used")
            if not (image.disk_format and image.container_format):
                raise errors.BadRequest("Properties disk_format, container_format must be set prior to importing "
                                        "data.")
            usage = self.svc.usage(s, image.owner)
            quotas.enforce("image_size_total", self.svc.limits.image_size_total, usage.image_size_total,
                           (image.size or 0) * len(stores))
            now = utcnow()
            task = ImageTask(id=str(uuid.uuid4()), image_id=image_id, type="api_image_import", status="processing",
                             owner=image.owner, user_id=ctx.user_id, request_id=request_id,
                             input={"image_id": image_id, "import_req": dict(body), "backend": stores},
                             result=None, message="", created_at=now, updated_at=now)
            s.add(task)
            image.status = "importing"
            image.transfer_heartbeat = time.time()
            image.updated_at = now
        job = asyncio.get_running_loop().create_task(self._run_import(task.id, image_id, stores, must_succeed))
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _run_import(self, task_id: str, image_id: str, stores: list[str], must_succeed: bool) -> None:
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            staged = next((loc for loc in image.locations if loc.status == "staged"), None) if image else None
            if image is None or staged is None:
                return
            staged_key, meta, disk_format, size = staged.key, dict(staged.meta), image.disk_format, image.size or 0
        copies: list[tuple[StoreDriver, str]] = []
        failures: list[str] = []
        beat = self.data.heartbeat(image_id)
        try:
            for store_id in stores:
                store = self.svc.stores[store_id]
                writer = store.writer(image_id)
                try:
                    await transfer.copy(self.svc.staging.read(staged_key), writer, beat)
                    copies.append((store, await writer.commit()))
                except BaseException as exc:
                    await writer.abort()
                    if not isinstance(exc, Exception):
                        raise
                    failures.append(f"{store_id}: {exc}")
            if not copies or (failures and must_succeed):
                raise StoreError("; ".join(failures))
            store, location = copies[0]
            inspection = await self.data.inspect(store, location, disk_format, size)
        except BaseException as exc:
            for store, location in copies:
                await store.delete(location)
            unsafe = isinstance(exc, formats.UnsafeImage)
            if unsafe:
                await self._drop_staged(image_id)
            self.data.restore(image_id, "importing", "queued" if unsafe else "uploading")
            self._finish_task(task_id, "failure", f"Import failed: {exc}")
            if not isinstance(exc, Exception):
                raise
            return
        digest = transfer.Digest(size, meta.get("checksum", ""), meta.get("os_hash_value", ""))
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            if image is not None and image.status == "importing":
                activate(image, digest, inspection)
                image.locations = [loc for loc in image.locations if loc.status != "staged"]
                image.locations.extend(ImageLocation(store=st.store_id, key=key, status="active", meta={})
                                       for st, key in copies)
                done = True
            else:
                done = False
        if not done:
            for store, location in copies:
                await store.delete(location)
        await self.svc.staging.delete(staged_key)
        self._finish_task(task_id, "success" if done else "failure",
                          "" if done else "The image was deleted during the import.",
                          {"image_id": image_id, "stores": [st.store_id for st, _ in copies]} if done else None)

    async def _drop_staged(self, image_id: str) -> None:
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            staged = [loc for loc in image.locations if loc.status == "staged"] if image else []
            keys = [loc.key for loc in staged]
            if image is not None:
                image.locations = [loc for loc in image.locations if loc.status != "staged"]
                image.size = None
        for key in keys:
            await self.svc.staging.delete(key)

    def _finish_task(self, task_id: str, status: str, message: str, result: dict[str, Any] | None = None) -> None:
        with self.svc.session() as s:
            task = s.get(ImageTask, task_id)
            if task is not None:
                task.status, task.message, task.result, task.updated_at = status, message, result, utcnow()

    async def stop(self) -> None:
        """Cancel imports in flight; each puts its image back to ``uploading``."""
        for job in list(self._background):
            job.cancel()
        for job in list(self._background):
            with contextlib.suppress(BaseException):
                await job
