"""Store drivers by kind: ``file`` (a directory on this host) and ``swift`` (the cloud's object storage)."""

from __future__ import annotations

from pathlib import Path

from tinystack.core.svcauth import lazy_from_state_dir
from tinystack.image.drivers.base import StoreDriver
from tinystack.image.drivers.filesystem import FilesystemStore
from tinystack.image.settings import ImageSettings, StoreSpec


def make(spec: StoreSpec, settings: ImageSettings, state_dir: Path) -> StoreDriver:
    if spec.kind == "file":
        return FilesystemStore(spec.id, spec.path)
    if spec.kind == "swift":
        from tinystack.image.drivers.swift import SwiftOptions, SwiftStore

        options = SwiftOptions(settings.swift_store_container, settings.swift_store_large_object_size,
                               settings.swift_store_large_object_chunk_size)
        # The service user's credentials (service.yaml), read when first used: the bootstrap writes them
        # after the services are built.
        return SwiftStore(spec.id, options, lazy_from_state_dir(state_dir))
    raise ValueError(f"image store {spec.id!r}: unknown store kind {spec.kind!r}")
