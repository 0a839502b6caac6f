"""The block storage service: the one object the API, compute and the controller use. Rules live in one
module per concept (volumes, snapshots, types, quotas, attachments); this holds the shared handles, and the
attachment calls compute makes (docs/contracts.md "Volumes on servers")."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinystack.config import Config
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.bus import Bus
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceBase
from tinystack.volume import agent_settings, policies
from tinystack.volume import settings as settings_mod

MIGRATIONS = Path(__file__).parent / "migrations"


class VolumeService(ServiceBase):
    def __init__(self, config: Config, db: Database, bus: Bus, policy: PolicyEngine,
                 services: Mapping[str, Any]) -> None:
        super().__init__(db, policy, services)
        self.config = config
        self.settings = settings_mod.load(config)
        self.agent_settings = agent_settings.load(config)
        self.volumes_path = self.agent_settings.volumes_path
        self.backend_paths = self.agent_settings.backends
        self.bus = bus
        policy.register_defaults(policies.DEFAULTS)
        from tinystack.volume.attachment_records import AttachmentRecords
        from tinystack.volume.attachments import Attachments
        from tinystack.volume.backup_controller import BackupController
        from tinystack.volume.backup_records import BackupRecords
        from tinystack.volume.backups import Backups
        from tinystack.volume.controller import Controller
        from tinystack.volume.default_types import DefaultTypes
        from tinystack.volume.exports import Exports
        from tinystack.volume.group_snapshots import GroupSnapshots
        from tinystack.volume.group_types import GroupTypes
        from tinystack.volume.groups import Groups
        from tinystack.volume.messages import Messages
        from tinystack.volume.quotas import Quotas
        from tinystack.volume.retype import Retype
        from tinystack.volume.snapshots import Snapshots
        from tinystack.volume.transfers import Transfers
        from tinystack.volume.types import VolumeTypes
        from tinystack.volume.volumes import Volumes

        self.types = VolumeTypes(self)
        self.quotas = Quotas(self)
        self.volumes = Volumes(self)
        self.snapshots = Snapshots(self)
        self.exports = Exports(self)
        self.attachments = Attachments(self)
        self.attachment_records = AttachmentRecords(self)
        self.retyping = Retype(self)
        self.transfers = Transfers(self)
        self.messages = Messages(self)
        self.default_types = DefaultTypes(self)
        self.group_types = GroupTypes(self)
        self.groups = Groups(self)
        self.group_snapshots = GroupSnapshots(self)
        self.controller = Controller(self)
        self.backups = Backups(self)
        self.backup_controller = BackupController(self)
        self.backup_records = BackupRecords(self)

    def zone_names(self) -> list[str]:
        return [self.settings.default_availability_zone]

    def host_usage(self, host: str) -> list[dict[str, Any]]:
        """os-hosts/{host}: volume and snapshot totals on ``host``, all projects then each project."""
        from sqlalchemy import select

        from tinystack.volume.models import Snapshot, Volume

        totals: dict[str, dict[str, Any]] = {}
        with self.session() as s:
            for model, count, size in ((Volume, "volume_count", "total_volume_gb"),
                                       (Snapshot, "snapshot_count", "total_snapshot_gb")):
                for project_id, gb in s.execute(select(model.project_id, model.size).where(model.host == host)):
                    for key in ("(total)", project_id):
                        row = totals.setdefault(key, {"project": key, "host": host, "volume_count": 0,
                                                      "total_volume_gb": 0, "snapshot_count": 0,
                                                      "total_snapshot_gb": 0})
                        row[count] += 1
                        row[size] += gb
        totals.setdefault("(total)", {"project": "(total)", "host": host, "volume_count": 0, "total_volume_gb": 0,
                                      "snapshot_count": 0, "total_snapshot_gb": 0})
        return [totals.pop("(total)"), *totals.values()]

    def capabilities(self, host: str) -> dict[str, Any]:
        """capabilities/{host}: what the one backend on ``host`` (``host`` or ``host@backend``) offers."""
        name, _, backend = host.partition("@")
        backend = backend.split("#", 1)[0]
        if name not in self.controller.heartbeats or backend not in ("", *self.retyping.hosts().get(name, [])):
            raise errors.NotFound(f"Host {host} could not be found.")
        ours = backend or self.settings.backend_name
        return {"namespace": f"OS::Storage::Capabilities::{name}@{ours}", "vendor_name": "tinystack",
                "volume_backend_name": ours, "pool_name": ours, "driver_version": "1.0", "storage_protocol": "file",
                "display_name": None, "description": None, "visibility": None, "replication_targets": [],
                "properties": {"thin_provisioning": {
                    "title": "Thin Provisioning", "type": "boolean",
                    "description": "Volumes are sparse files: space is used as it is written."}}}

    def volume_path(self, volume_id: str, backend: str | None = None, name_id: str | None = None) -> Path:
        """Where compute nodes open a volume: its backend's directory (agent_settings), the file named after its
        ``name_id`` once migrated."""
        root = self.backend_paths.get(backend or self.settings.backend_name, self.volumes_path)
        return root / f"volume-{name_id or volume_id}"

    # --- what compute calls (docs/contracts.md) ---------------------------------------------------

    def get(self, ctx: RequestContext, volume_id: str) -> dict[str, Any]:
        """The volume as compute needs it: id, status, size, attachments."""
        vol = self.volumes.get(ctx, volume_id)
        with self.session() as s:
            atts = self.volumes.attachments(s, [vol.id])[vol.id]
        return {"id": vol.id, "name": vol.name, "status": vol.status, "size": vol.size,
                "project_id": vol.project_id, "bootable": vol.bootable, "multiattach": vol.multiattach,
                "read_only": vol.read_only, "volume_image_metadata": dict(vol.image_meta or {}),
                "attachments": [{"id": a.id, "server_id": a.instance_uuid, "device": a.mountpoint,
                                 "attach_status": a.attach_status} for a in atts]}

    def get_snapshot(self, ctx: RequestContext, snapshot_id: str) -> dict[str, Any]:
        snap = self.snapshots.get(ctx, snapshot_id)
        return {"id": snap.id, "status": snap.status, "size": snap.size, "volume_id": snap.volume_id}

    def create_volume(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """A new volume from a Cinder-style body (size, imageRef, snapshot_id, ...), as the API creates one."""
        return {"id": self.volumes.create(ctx, body).id}

    def reserve(self, ctx: RequestContext, volume_id: str, instance_id: str, mountpoint: str | None) -> dict[str, Any]:
        return self.attachments.reserve(ctx, volume_id, instance_id, mountpoint)

    def attach_complete(self, attachment_id: str, mountpoint: str | None = None) -> None:
        self.attachments.attach_complete(attachment_id, mountpoint)

    def attach_failed(self, attachment_id: str, reason: str) -> None:
        self.attachments.attach_failed(attachment_id, reason)

    def begin_detach(self, attachment_id: str) -> None:
        self.attachments.begin_detach(attachment_id)

    def roll_detaching(self, attachment_id: str) -> None:
        self.attachments.roll_detaching(attachment_id)

    def detach_complete(self, attachment_id: str) -> None:
        self.attachments.detach_complete(attachment_id)

    def delete_volume(self, ctx: RequestContext, volume_id: str) -> None:
        self.volumes.delete(ctx, volume_id)
