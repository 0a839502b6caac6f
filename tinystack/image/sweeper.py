"""The sweeper: undoes transfers whose heartbeat stopped (a crashed or vanished client or process),
removes partial data, and deletes stored objects no image refers to once they were seen unowned twice."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import select

from tinystack.core.lease import Lease, Singleton
from tinystack.image.drivers.base import StoreError
from tinystack.image.models import Image, ImageLocation, ImageTask, utcnow

if TYPE_CHECKING:
    from tinystack.image.service import ImageService

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc
        self._orphans: dict[str, set[str]] = {}

    async def sweep(self) -> None:
        """Undo transfers whose heartbeat stopped, drop partial data and (seen twice) unowned objects."""
        stale_after = self.svc.settings.upload_stale_after
        cutoff = time.time() - stale_after
        with self.svc.session() as s:
            for image in s.scalars(select(Image).where(Image.status.in_(("saving", "uploading", "importing")),
                                                       Image.transfer_heartbeat < cutoff)).all():
                tasks = s.scalars(select(ImageTask).where(ImageTask.image_id == image.id,
                                                          ImageTask.status == "processing")).all()
                # Staged data waits for another glance-direct import; a web-download starts over (the data,
                # no longer owned, is swept later).
                if any(_method(t) == "web-download" for t in tasks):
                    image.locations = [loc for loc in image.locations if loc.status != "staged"]
                staged = any(loc.status == "staged" for loc in image.locations)
                log.warning("image %s: %s abandoned, resetting", image.id, image.status)
                image.status = "uploading" if image.status == "importing" and staged else "queued"
                image.transfer_heartbeat = None
                image.updated_at = utcnow()
                for task in tasks:
                    task.status, task.message = "failure", "The import was abandoned."
            owned = {(loc.store, loc.key) for loc in s.scalars(select(ImageLocation)).all()}
        for store in [*self.svc.stores.values(), self.svc.staging]:
            try:
                await store.sweep_partials(stale_after)
                candidates = {key for key in await store.locations() if (store.store_id, key) not in owned}
            except StoreError as exc:
                log.warning("sweeping store %s failed: %s", store.store_id, exc)
                continue
            doomed = candidates & self._orphans.get(store.store_id, set())
            for key in doomed:
                log.warning("store %s: removing %s, which no image refers to", store.store_id, key)
                await store.delete(key)
            self._orphans[store.store_id] = candidates - doomed

    async def run(self) -> None:
        """Sweep now and then periodically, in the one API process that holds the sweeper's lease: two
        processes sweeping at once would both reset one transfer and count orphans each on their own."""
        interval = max(60.0, self.svc.settings.upload_stale_after / 2)
        await Singleton(Lease(self.svc.db, "image.sweeper"), self.sweep, interval).run()


def _method(task: ImageTask) -> str | None:
    """The import method a task ran (tasks of type ``import`` are web-downloads)."""
    if task.type == "import":
        return "web-download"
    request = (task.input or {}).get("import_req")
    method = request.get("method") if isinstance(request, dict) else None
    return method.get("name") if isinstance(method, dict) else None
