"""Store drivers by kind: ``file`` (a directory on this host) and ``swift`` (the cloud's object storage)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tinystack.core.svcauth import ServiceAuth, ServiceAuthError
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
        return SwiftStore(spec.id, options, _service_auth(state_dir / "service.yaml"))
    raise ValueError(f"image store {spec.id!r}: unknown store kind {spec.kind!r}")


def _service_auth(path: Path) -> Callable[[], ServiceAuth]:
    """The service user's credentials, read when first used: the identity bootstrap writes ``service.yaml``
    after the services are built, so until then the store is unavailable (a StoreError, a 503)."""
    cached: list[ServiceAuth] = []

    def get() -> ServiceAuth:
        if not cached:
            if not path.exists():
                raise ServiceAuthError("the service credentials are not written yet (first start)")
            cached.append(ServiceAuth.from_file(path))
        return cached[0]

    return get
