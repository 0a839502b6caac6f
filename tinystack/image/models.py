"""Image tables: images, their free-form properties, tags, members, data locations and import tasks; and the
metadata definitions catalog (metadefs): namespaces, what they hold, and their resource types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tinystack.core.db import Base

UUID = String(36)
PROJECT = String(255)


def utcnow() -> datetime:
    """Naive UTC, as the tables store it."""
    return datetime.now(UTC).replace(tzinfo=None)


class Image(Base):
    __tablename__ = "image_image"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    owner: Mapped[str | None] = mapped_column(PROJECT, nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(30), index=True)
    visibility: Mapped[str] = mapped_column(String(16), index=True)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    disk_format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    container_format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(32), nullable=True)
    os_hash_algo: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os_hash_value: Mapped[str | None] = mapped_column(String(128), nullable=True)
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    # Wall-clock time of the last progress of an upload, stage or import; lets a sweeper find abandoned ones.
    transfer_heartbeat: Mapped[float | None] = mapped_column(Float, nullable=True)

    properties: Mapped[list[ImageProperty]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True)
    tags: Mapped[list[ImageTag]] = relationship(cascade="all, delete-orphan", lazy="selectin", passive_deletes=True)
    locations: Mapped[list[ImageLocation]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True, order_by="ImageLocation.id")


class ImageProperty(Base):
    __tablename__ = "image_property"
    image_id: Mapped[str] = mapped_column(UUID, ForeignKey("image_image.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)


class ImageTag(Base):
    __tablename__ = "image_tag"
    image_id: Mapped[str] = mapped_column(UUID, ForeignKey("image_image.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)


class ImageMember(Base):
    __tablename__ = "image_member"
    image_id: Mapped[str] = mapped_column(UUID, ForeignKey("image_image.id", ondelete="CASCADE"), primary_key=True)
    member: Mapped[str] = mapped_column(PROJECT, primary_key=True, index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ImageLocation(Base):
    """Where one copy of an image's data lives. ``status`` is ``active``, or ``staged`` for import data."""

    __tablename__ = "image_location"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(UUID, ForeignKey("image_image.id", ondelete="CASCADE"), index=True)
    store: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ImageTask(Base):
    """An import request and its outcome, as ``GET /v2/images/{id}/tasks`` shows it."""

    __tablename__ = "image_task"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    image_id: Mapped[str] = mapped_column(UUID, index=True)
    type: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(30))
    owner: Mapped[str | None] = mapped_column(PROJECT, nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    input: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class MetadefNamespace(Base):
    __tablename__ = "image_metadef_namespace"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    visibility: Mapped[str] = mapped_column(String(32), default="private")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(PROJECT, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    items: Mapped[list[MetadefItem]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True, order_by="MetadefItem.name")
    associations: Mapped[list[MetadefAssociation]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True, order_by="MetadefAssociation.name")


class MetadefItem(Base):
    """An object, property or tag of a namespace (``kind``); ``body`` is its definition as the API shows it."""

    __tablename__ = "image_metadef_item"
    __table_args__ = (UniqueConstraint("namespace_id", "kind", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("image_metadef_namespace.id", ondelete="CASCADE"),
                                              index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MetadefResourceType(Base):
    __tablename__ = "image_metadef_resource_type"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MetadefAssociation(Base):
    """A namespace applies to a resource type (``name``), its properties named with ``prefix``."""

    __tablename__ = "image_metadef_association"
    namespace_id: Mapped[int] = mapped_column(ForeignKey("image_metadef_namespace.id", ondelete="CASCADE"),
                                              primary_key=True)
    name: Mapped[str] = mapped_column(ForeignKey("image_metadef_resource_type.name"), primary_key=True)
    prefix: Mapped[str | None] = mapped_column(String(80), nullable=True)
    properties_target: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MetadefSeed(Base):
    """A definition file loaded at start, so a namespace an operator deleted does not come back."""

    __tablename__ = "image_metadef_seed"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    loaded_at: Mapped[datetime] = mapped_column(DateTime)


TABLES = [m.__table__ for m in (Image, ImageProperty, ImageTag, ImageMember, ImageLocation, ImageTask,
                                MetadefNamespace, MetadefItem, MetadefResourceType, MetadefAssociation, MetadefSeed)]
