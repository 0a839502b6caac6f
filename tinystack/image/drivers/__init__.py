"""Store drivers by kind. An object store driver registers here under its own kind."""

from __future__ import annotations

from pathlib import Path

from tinystack.image.drivers.base import StoreDriver
from tinystack.image.drivers.filesystem import FilesystemStore


def make(store_id: str, kind: str, path: Path) -> StoreDriver:
    if kind == "file":
        return FilesystemStore(store_id, path)
    raise ValueError(f"image store {store_id!r}: unknown store kind {kind!r}")
