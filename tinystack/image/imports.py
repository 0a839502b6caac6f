"""Interoperable image import (``POST /v2/images/{id}/import``): the request is checked and recorded as a task
(``GET /v2/images/{id}/tasks``, ``/v2/tasks``), then the work runs in the background.

- glance-direct: data staged by ``PUT /stage`` is copied into the requested stores;
- web-download: the data is first fetched from a URL into the staging area (``webdownload`` says which);
- copy-image: an active image's data is copied into more stores, the image staying active.

While it runs the image carries ``os_glance_importing_to_stores``; at the end ``os_glance_failed_import``
names the stores that failed, as Glance's clients and Tempest expect. A failed glance-direct import keeps
the staged data for a retry (except data that failed inspection); a failed web-download drops it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.image import formats, quotas, transfer, webdownload
from tinystack.image.data import activate
from tinystack.image.drivers.base import StoreDriver, StoreError
from tinystack.image.models import Image, ImageLocation, ImageProperty, ImageTask, utcnow

if TYPE_CHECKING:
    from tinystack.image.service import ImageService

GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE = "glance-direct", "web-download", "copy-image"
METHODS = (GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE)
IMPORTING, FAILED = "os_glance_importing_to_stores", "os_glance_failed_import"


@dataclass(frozen=True)
class Job:
    task_id: str
    image_id: str
    method: str
    stores: list[str]
    must_succeed: bool
    uri: str | None = None


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

    async def import_image(self, ctx: RequestContext, image_id: str, body: Mapping[str, Any], request_id: str,
                           header_store: str | None = None, task_type: str = "api_image_import",
                           task_input: dict[str, Any] | None = None) -> str:
        """Check and record the request, start the work in the background; returns the task's id.
        ``task_type`` and ``task_input`` are for the tasks API's own import tasks."""
        method = body["method"]["name"]
        if method not in self.svc.settings.enabled_import_methods:
            raise errors.BadRequest(f"Unknown import method name '{method}'.")
        stores, must_succeed = self._import_stores(body, header_store)
        uri = body["method"].get("uri")
        if method == WEB_DOWNLOAD:
            if not isinstance(uri, str) or not uri:
                raise errors.BadRequest("URI for web-download import method is required.")
            await webdownload.check_resolves(uri, self.svc.settings)

        def step(s: Session) -> Job:
            image, membership = self.svc.find(s, ctx, image_id)
            targets = stores
            if method == COPY_IMAGE:
                self.svc.enforce_on(ctx, "copy_image", image, membership)
                if image.status != "active":
                    raise errors.Conflict("Image needs to be in 'active' state to use 'copy-image' method")
                beat = image.transfer_heartbeat
                # A copy whose heartbeat stopped (its process died) does not block a new one.
                if _prop(image, IMPORTING) and beat and time.time() - beat < self.svc.settings.upload_stale_after:
                    raise errors.Conflict(f"An import of image {image_id} is already in progress.")
                held = {loc.store for loc in image.locations if loc.status == "active"}
                targets = [st for st in stores if st not in held]
                if not targets:
                    raise errors.Conflict(f"Image {image_id} is already present in store(s) "
                                          f"{', '.join(stores)}.")
            else:
                self.svc.enforce_on(ctx, "modify_image", image, membership)
                self._check_new_data(image, method)
            usage = self.svc.usage(s, image.owner)
            quotas.enforce("image_size_total", self.svc.limits.image_size_total, usage.image_size_total,
                           (image.size or 0) * len(targets))
            now = utcnow()
            task = ImageTask(id=str(uuid.uuid4()), image_id=image_id, type=task_type, status="processing",
                             owner=image.owner, user_id=ctx.user_id, request_id=request_id,
                             input=task_input or {"image_id": image_id, "import_req": dict(body), "backend": targets},
                             result=None, message="", created_at=now, updated_at=now)
            s.add(task)
            if method != COPY_IMAGE:
                image.status = "importing"
            image.transfer_heartbeat = time.time()  # copy-image: the copy's liveness (the image stays active)
            note_progress(image, importing=targets, failed=[])
            image.updated_at = now
            return Job(task.id, image_id, method, targets, must_succeed, uri)

        job = await self.svc.write(step)
        self.start(job)
        return job.task_id

    def _check_new_data(self, image: Image, method: str) -> None:
        if method == GLANCE_DIRECT:
            staged = [loc for loc in image.locations if loc.status == "staged"]
            if image.status != "uploading" or not staged:
                raise errors.Conflict("Image needs to be staged before 'glance-direct' method can be used")
        elif image.status != "queued":
            raise errors.Conflict(f"Image needs to be in 'queued' state to use '{method}' method")
        if not (image.disk_format and image.container_format):
            raise errors.BadRequest("Properties disk_format, container_format must be set prior to importing data.")

    def start(self, job: Job) -> None:
        run = {GLANCE_DIRECT: self._run_import, WEB_DOWNLOAD: self._run_web_download, COPY_IMAGE: self._run_copy}
        task = asyncio.get_running_loop().create_task(run[job.method](job))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- the background work --------------------------------------------------------------------

    async def _copy_into(self, image_id: str, read: Callable[[], AsyncIterator[bytes]], stores: list[str],
                         size: int | None) -> tuple[list[tuple[StoreDriver, str]], list[str]]:
        """Copy the data ``read`` yields into each store; the copies made and the stores that failed."""
        copies: list[tuple[StoreDriver, str]] = []
        failed: list[str] = []
        beat = self.data.heartbeat(image_id)
        for store_id in stores:
            store = self.svc.stores[store_id]
            writer = store.writer(image_id, size)
            try:
                await transfer.copy(read(), writer, beat)
                copies.append((store, await writer.commit()))
            except BaseException as exc:
                await writer.abort()
                if not isinstance(exc, Exception):
                    for st, location in copies:
                        await st.delete(location)
                    raise
                failed.append(store_id)
        return copies, failed

    async def _run_web_download(self, job: Job) -> None:
        assert job.uri is not None
        try:
            await self._download(job.image_id, job.uri)
        except BaseException as exc:
            self._fail(job, "queued", f"Import failed: {exc}", failed=job.stores)
            if not isinstance(exc, Exception):
                raise
            return
        await self._run_import(job)

    async def _download(self, image_id: str, uri: str) -> None:
        """Fetch ``uri`` into the staging area as the image's staged data."""
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            if image is None:
                raise errors.NotFound(f"Image {image_id} was deleted.")
            limits, usage = self.svc.limits, self.svc.usage(s, image.owner)
        caps = [c for c in (quotas.remaining(limits.image_stage_total, usage.image_stage_total),
                            limits.image_size_cap) if c is not None and c >= 0]
        writer = self.svc.staging.writer(image_id)
        try:
            digest = await transfer.receive(webdownload.fetch(uri, self.svc.settings), writer,
                                            min(caps) if caps else None, self.data.heartbeat(image_id))
            location = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            if image is not None and image.status == "importing":
                image.size = digest.size
                image.locations.append(ImageLocation(store=self.svc.staging.store_id, key=location, status="staged",
                                                     meta={"checksum": digest.md5, "os_hash_value": digest.sha512}))
                return
        await self.svc.staging.delete(location)
        raise errors.NotFound(f"Image {image_id} was deleted during the download.")

    async def _run_import(self, job: Job) -> None:
        image_id = job.image_id
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            staged = next((loc for loc in image.locations if loc.status == "staged"), None) if image else None
            if image is None or staged is None:
                self._finish_task(job.task_id, "failure", "The image or its staged data is gone.")
                return
            staged_key, meta, disk_format, size = staged.key, dict(staged.meta), image.disk_format, image.size or 0
        copies: list[tuple[StoreDriver, str]] = []
        try:
            copies, failed = await self._copy_into(image_id, lambda: self.svc.staging.read(staged_key), job.stores,
                                                   size or None)
            if not copies or (failed and job.must_succeed):
                raise StoreError(f"could not write to store(s) {', '.join(failed)}")
            # The staged copy is the same data and always local: no remote store is read back to inspect it.
            inspection = await self.data.inspect(self.svc.staging, staged_key, disk_format, size)
        except BaseException as exc:
            for store, location in copies:
                await store.delete(location)
            keep = job.method == GLANCE_DIRECT and not isinstance(exc, formats.UnsafeImage)
            if not keep:
                await self._drop_staged(image_id)
            self._fail(job, "uploading" if keep else "queued", f"Import failed: {exc}", failed=job.stores)
            if not isinstance(exc, Exception):
                raise
            return
        digest = transfer.Digest(size, meta.get("checksum", ""), meta.get("os_hash_value", ""))
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            done = image is not None and image.status == "importing"
            if image is not None and done:
                activate(image, digest, inspection)
                image.locations = [loc for loc in image.locations if loc.status != "staged"]
                image.locations.extend(ImageLocation(store=st.store_id, key=key, status="active", meta={})
                                       for st, key in copies)
                note_progress(image, importing=[], failed=failed)
        if not done:
            for store, location in copies:
                await store.delete(location)
        await self.svc.staging.delete(staged_key)
        self._finish_task(job.task_id, "success" if done else "failure",
                          "" if done else "The image was deleted during the import.",
                          {"image_id": image_id, "stores": [st.store_id for st, _ in copies]} if done else None)

    async def _run_copy(self, job: Job) -> None:
        image_id = job.image_id
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            source = next(((loc.store, loc.key) for loc in image.locations
                           if loc.status == "active" and loc.store in self.svc.stores), None) if image else None
            size = image.size if image is not None else None
        if source is None:
            self._fail(job, None, "The image has no data left to copy.", failed=job.stores)
            return
        store = self.svc.stores[source[0]]
        copies, failed = await self._copy_into(image_id, lambda: store.read(source[1]), job.stores, size)
        with self.svc.session() as s:
            image = s.get(Image, image_id)
            kept = image is not None and image.status == "active"
            if image is not None:
                if kept:
                    image.locations.extend(ImageLocation(store=st.store_id, key=key, status="active", meta={})
                                           for st, key in copies)
                note_progress(image, importing=[], failed=failed)
                image.transfer_heartbeat = None
                image.updated_at = utcnow()
        if not kept:
            for st, location in copies:
                await st.delete(location)
        ok = kept and bool(copies) and not (failed and job.must_succeed)
        message = "" if ok else (f"Copy failed for store(s): {', '.join(failed)}" if failed
                                 else "The image is no longer active.")
        self._finish_task(job.task_id, "success" if ok else "failure", message,
                          {"image_id": image_id, "stores": [st.store_id for st, _ in copies]} if kept else None)

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

    def _fail(self, job: Job, back_to: str | None, message: str, failed: list[str]) -> None:
        """Record a failed import: the image back to ``back_to`` (from ``importing``), the task failed."""
        with self.svc.session() as s:
            image = s.get(Image, job.image_id)
            if image is not None:
                if back_to is not None and image.status == "importing":
                    image.status, image.transfer_heartbeat = back_to, None
                note_progress(image, importing=[], failed=failed)
                image.updated_at = utcnow()
        self._finish_task(job.task_id, "failure", message)

    def _finish_task(self, task_id: str, status: str, message: str, result: dict[str, Any] | None = None) -> None:
        with self.svc.session() as s:
            task = s.get(ImageTask, task_id)
            if task is not None:
                task.status, task.message, task.result, task.updated_at = status, message, result, utcnow()

    async def stop(self) -> None:
        """Cancel imports in flight; each puts its image back to where the import found it."""
        for job in list(self._background):
            job.cancel()
        for job in list(self._background):
            with contextlib.suppress(BaseException):
                await job


def _prop(image: Image, name: str) -> str | None:
    return next((p.value for p in image.properties if p.name == name), None)


def note_progress(image: Image, importing: list[str], failed: list[str]) -> None:
    """Set the two properties clients poll to follow an import into several stores."""
    values = {IMPORTING: ",".join(importing), FAILED: ",".join(failed)}
    for prop in image.properties:
        if prop.name in values:
            prop.value = values.pop(prop.name)
    image.properties.extend(ImageProperty(name=k, value=v) for k, v in values.items())
