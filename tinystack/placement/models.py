"""Placement tables: providers, their inventories, traits and aggregates; consumers and their allocations."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tinystack.core.db import Base

UUID = String(36)
NAME = String(255)


def utcnow() -> datetime:
    """Naive UTC, as the tables store it."""
    return datetime.now(UTC).replace(tzinfo=None)


class ResourceProvider(Base):
    __tablename__ = "placement_resource_provider"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Bumped by every change to the provider or its allocations; writers compare-and-swap on it.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    parent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("placement_resource_provider.id"), nullable=True, index=True)
    root_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Inventory(Base):
    __tablename__ = "placement_inventory"
    rp_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("placement_resource_provider.id", ondelete="CASCADE"), primary_key=True)
    resource_class: Mapped[str] = mapped_column(NAME, primary_key=True)
    total: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    min_unit: Mapped[int] = mapped_column(Integer, default=1)
    max_unit: Mapped[int] = mapped_column(Integer)
    step_size: Mapped[int] = mapped_column(Integer, default=1)
    allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    # Sum of the allocations against this row, kept in the same transactions that write allocations so
    # that candidate queries need no aggregate over every allocation.
    used: Mapped[int] = mapped_column(Integer, default=0)


class Consumer(Base):
    __tablename__ = "placement_consumer"
    uuid: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(NAME, index=True)
    user_id: Mapped[str] = mapped_column(NAME, index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    consumer_type: Mapped[str | None] = mapped_column(NAME, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Allocation(Base):
    __tablename__ = "placement_allocation"
    __table_args__ = (Index("ix_placement_allocation_rp_rc", "rp_id", "resource_class"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rp_id: Mapped[int] = mapped_column(Integer, ForeignKey("placement_resource_provider.id"))
    consumer_id: Mapped[str] = mapped_column(UUID, index=True)
    resource_class: Mapped[str] = mapped_column(NAME)
    used: Mapped[int] = mapped_column(Integer)


class Trait(Base):
    """Custom traits (``CUSTOM_*``); the standard ones are in code (``standard.py``)."""

    __tablename__ = "placement_trait"
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderTrait(Base):
    __tablename__ = "placement_provider_trait"
    rp_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("placement_resource_provider.id", ondelete="CASCADE"), primary_key=True)
    trait: Mapped[str] = mapped_column(NAME, primary_key=True, index=True)


class ResourceClass(Base):
    """Custom resource classes (``CUSTOM_*``); the standard ones are in code."""

    __tablename__ = "placement_resource_class"
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderAggregate(Base):
    __tablename__ = "placement_provider_aggregate"
    rp_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("placement_resource_provider.id", ondelete="CASCADE"), primary_key=True)
    aggregate: Mapped[str] = mapped_column(UUID, primary_key=True, index=True)


TABLES = [t.__table__ for t in (ResourceProvider, Inventory, Consumer, Allocation, Trait, ProviderTrait,
                                ResourceClass, ProviderAggregate)]
