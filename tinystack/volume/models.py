"""Block storage tables: volumes, their attachments, snapshots, volume types and quotas. Metadata and extra
specs are JSON columns: they are read whole with their owner and never queried on their own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tinystack.core.db import Base

UUID = String(36)
PROJECT = String(255)


def utcnow() -> datetime:
    """Naive UTC, as the tables store it."""
    return datetime.now(UTC).replace(tzinfo=None)


class VolumeType(Base):
    __tablename__ = "volume_type"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Projects that may use a private type.
    projects: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Volume(Base):
    __tablename__ = "volume_volume"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), index=True)
    # The status to go back to when an upload or extend finishes (available or in-use).
    previous_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(255))
    volume_type_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    source_volid: Mapped[str | None] = mapped_column(UUID, nullable=True)
    image_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    image_meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Cinder's admin metadata (readonly, attached_mode): shown in ``metadata``, changed only by actions.
    admin_meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The desired state sent to the volume agent (docs/contracts.md): source, upload.
    doc: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    # The generation last sent to the volume host (tinystack/core/desired.py).
    published_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Which of the host's backends (``[volume] enabled_backends``) holds the file; None: the first one.
    backend: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Cinder's migstat (migrating, success, error) and the id the backend file is named after once migrated.
    migration_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    # The generic volume group (3.13) the volume belongs to.
    group_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)


class Attachment(Base):
    __tablename__ = "volume_attachment"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(UUID, ForeignKey("volume_volume.id", ondelete="CASCADE"), index=True)
    instance_uuid: Mapped[str | None] = mapped_column(UUID, nullable=True)
    attached_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mountpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attach_status: Mapped[str] = mapped_column(String(32))  # attaching, attached, detaching
    attach_mode: Mapped[str] = mapped_column(String(8), default="rw")
    attach_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # What the attachments API (3.27) was told about the attaching host; None for compute's own attachments.
    connector: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Its NBD export ({"name", "identity", "key"}: secrets, never shown but in its connection info) when the
    # volume node exports to other machines ([volume] nbd_host); None for file-only clouds.
    export: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Snapshot(Base):
    __tablename__ = "volume_snapshot"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(UUID, index=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), index=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    # The generation last sent to the volume host (tinystack/core/desired.py).
    published_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)
    # The group snapshot (3.14) this snapshot was taken as part of.
    group_snapshot_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)


class Quota(Base):
    __tablename__ = "volume_quota"
    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)

class Transfer(Base):
    """A volume offered to another project: the auth key is shown once, only its salted hash is kept."""
    __tablename__ = "volume_transfer"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(UUID, unique=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    salt: Mapped[str] = mapped_column(String(64))
    crypt_hash: Mapped[str] = mapped_column(String(128))
    no_snapshots: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Message(Base):
    """An asynchronous error a project's user must see (Cinder's user messages), kept until ``expires_at``."""
    __tablename__ = "volume_message"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    request_id: Mapped[str] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(255))  # VOLUME, VOLUME_SNAPSHOT
    resource_uuid: Mapped[str | None] = mapped_column(UUID, nullable=True)
    event_id: Mapped[str] = mapped_column(String(255))  # VOLUME_<resource type>_<action id>_<detail id>
    message_level: Mapped[str] = mapped_column(String(255), default="ERROR")
    # Why, for operators (the agent's reason); users see the fixed text of the event.
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class DefaultType(Base):
    """A project's own default volume type (3.62), instead of ``[volume] default_volume_type``."""
    __tablename__ = "volume_default_type"
    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    volume_type_id: Mapped[str] = mapped_column(UUID, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GroupType(Base):
    """A generic volume group type (3.11): admin-managed, with group specs."""
    __tablename__ = "volume_group_type"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    group_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Group(Base):
    """A generic volume group (3.13): volumes of the listed volume types, snapshotted together."""
    __tablename__ = "volume_group"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), index=True)
    availability_zone: Mapped[str] = mapped_column(String(255))
    group_type_id: Mapped[str] = mapped_column(UUID, index=True)
    volume_type_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Where a group made by create-from-src (3.14) came from.
    group_snapshot_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    source_group_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)


class GroupSnapshot(Base):
    """A snapshot of every volume of a group at once (3.14); its snapshots carry its id."""
    __tablename__ = "volume_group_snapshot"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    group_id: Mapped[str] = mapped_column(UUID, index=True)
    group_type_id: Mapped[str] = mapped_column(UUID)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)


class Backup(Base):
    """A copy of a volume's data in object storage (tinystack/volume/backups.py); the volume host's backup agent
    writes, restores and removes its objects from ``doc`` (docs/contracts.md)."""
    __tablename__ = "volume_backup"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    volume_id: Mapped[str] = mapped_column(UUID, index=True)
    snapshot_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    parent_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    fail_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    container: Mapped[str] = mapped_column(String(255))
    # The objects' name prefix in the container (Cinder's service_metadata).
    prefix: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(Integer)
    object_count: Mapped[int] = mapped_column(Integer, default=0)
    is_incremental: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The desired state sent to the backup agent: mode (backup | import) and the newest restore asked for.
    doc: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    published_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    data_timestamp: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)


TABLES = [VolumeType.__table__, Volume.__table__, Attachment.__table__, Snapshot.__table__, Quota.__table__,
          Transfer.__table__, Message.__table__, DefaultType.__table__, GroupType.__table__, Group.__table__,
          GroupSnapshot.__table__,
          Backup.__table__]
