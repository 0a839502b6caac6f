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


TABLES = [VolumeType.__table__, Volume.__table__, Attachment.__table__, Snapshot.__table__, Quota.__table__,
          Transfer.__table__, Message.__table__, DefaultType.__table__]
