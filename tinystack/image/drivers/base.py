"""The store driver contract: where image bytes live. Drivers know nothing of image metadata or policy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class StoreError(Exception):
    """The store failed (I/O error, full disk, unreachable backend); the message says why."""


class StoreFull(StoreError):
    """The store has no room for the data being written."""


class ObjectNotFound(StoreError):
    """No object at the given location."""


@dataclass(frozen=True)
class Capacity:
    total: int | None
    free: int | None


class StoreWriter(Protocol):
    """One object being written. Nothing is visible at any location until ``commit`` returns."""

    async def write(self, chunks: Sequence[bytes]) -> None:
        """Append ``chunks`` in order. Raises StoreFull or StoreError; the writer must then be aborted."""

    async def commit(self) -> str:
        """Make the data durable (flushed to stable storage) and return its location. Called once.

        After a crash at any point, the location either holds all the data or nothing."""

    async def abort(self) -> None:
        """Discard everything written. Idempotent, never raises for missing data, a no-op after ``commit``."""


class StoreDriver(Protocol):
    """A named store. Locations are opaque strings the driver made; callers only pass them back."""

    store_id: str
    kind: str

    def writer(self, image_id: str, size: int | None = None) -> StoreWriter:
        """Begin a new object for ``image_id``, ``size`` bytes long when the caller knows. Several writers for
        one image may coexist; each commit returns its own location."""

    def read(self, location: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[offset, offset+length)`` of the object, in chunks. Raises ObjectNotFound (when
        iterated) if the object is gone."""

    async def size(self, location: str) -> int:
        """The object's size in bytes; raises ObjectNotFound."""

    def local_path(self, location: str) -> Path | None:
        """A path on this host that reads the object (for qemu-img and for booting), or None for remote stores."""

    async def delete(self, location: str) -> None:
        """Remove the object. Succeeds when it is already gone."""

    async def locations(self) -> list[str]:
        """Every committed object in the store, for sweeping objects no image owns."""

    async def sweep_partials(self, older_than: float) -> int:
        """Remove uncommitted data last written more than ``older_than`` seconds ago (a crashed writer's).
        Returns how many were removed."""

    def capacity(self) -> Capacity:
        """Total and free bytes, where the backend knows them."""

    def describe(self) -> dict[str, Any]:
        """Driver properties for ``/v2/info/stores/detail`` (Glance's per-kind fields)."""
