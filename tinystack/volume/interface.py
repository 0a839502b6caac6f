"""What other services (compute) may call on the block storage service: volumes as small dicts and the
attachment steps of docs/contracts.md. ``VOLUME`` finds it in the registry, typed by this ``Protocol``."""

from __future__ import annotations

from typing import Any, Protocol

from tinystack.core.auth import RequestContext
from tinystack.core.service import ServiceKey


class VolumeAPI(Protocol):
    def get(self, ctx: RequestContext, volume_id: str) -> dict[str, Any]:
        """id, name, status, size, project_id, bootable, multiattach, read_only, image metadata, attachments."""

    def get_snapshot(self, ctx: RequestContext, snapshot_id: str) -> dict[str, Any]:
        """id, status, size and volume_id of a snapshot ``ctx`` may see; NotFound otherwise."""

    def create_volume(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """A new volume from a Cinder-style body (size, imageRef, snapshot_id, ...) owned by ``ctx``; its id."""

    def delete_volume(self, ctx: RequestContext, volume_id: str) -> None:
        """Delete the volume as its owner would (refused while attached)."""

    def reserve(self, ctx: RequestContext, volume_id: str, instance_id: str,
                mountpoint: str | None) -> dict[str, Any]:
        """Start attaching: the volume becomes ``attaching``; the new attachment (its ``id``)."""

    def attach_complete(self, attachment_id: str, mountpoint: str | None = None) -> None:
        """The guest has the disk: the attachment and the volume become ``in-use``."""

    def attach_failed(self, attachment_id: str, reason: str) -> None:
        """The attach did not happen: the attachment goes and the volume is available again."""

    def begin_detach(self, attachment_id: str) -> None:
        """Start detaching: the volume becomes ``detaching``."""

    def roll_detaching(self, attachment_id: str) -> None:
        """The detach did not happen: back to ``in-use``."""

    def detach_complete(self, attachment_id: str) -> None:
        """The guest let the disk go: the attachment goes; the volume is available when none is left."""


VOLUME: ServiceKey[VolumeAPI] = ServiceKey("volume")
