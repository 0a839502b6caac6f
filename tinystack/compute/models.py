"""Compute tables: flavors, keypairs, quotas, instances with their actions, nodes, services, aggregates,
server groups and migrations. Free-form parts (metadata, tags, flavor snapshot, doc extras) are JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tinystack.core.db import Base

UUID = String(36)
PROJECT = String(255)


def utcnow() -> datetime:
    """Naive UTC, as the tables store it."""
    return datetime.now(UTC).replace(tzinfo=None)


class Flavor(Base):
    __tablename__ = "compute_flavor"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class FlavorAccess(Base):
    __tablename__ = "compute_flavor_access"
    flavor_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)


class KeyPair(Base):
    __tablename__ = "compute_keypair"
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    fingerprint: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Quota(Base):
    __tablename__ = "compute_quota"
    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaClass(Base):
    __tablename__ = "compute_quota_class"
    class_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class Instance(Base):
    __tablename__ = "compute_instance"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    hostname: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    image_ref: Mapped[str] = mapped_column(String(36), default="")
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON)
    new_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    key_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    vm_state: Mapped[str] = mapped_column(String(32), index=True)
    task_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    terminated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    user_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    config_drive: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    security_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What the user asked for: [{"uuid"|"port"|"fixed_ip"...}] or "auto"/"none"; resolved by the conductor.
    requested_networks: Mapped[Any] = mapped_column(JSON, default=list)
    # The ports bound to this server: [{"port_id", "created": bool}]; created ones are deleted with it.
    ports: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The server's "addresses" as last resolved from its ports: listing never calls the network service.
    addresses: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    access_ip_v4: Mapped[str] = mapped_column(String(64), default="")
    access_ip_v6: Mapped[str] = mapped_column(String(64), default="")
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    locked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    admin_pass: Mapped[str | None] = mapped_column(String(255), nullable=True)
    fault: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reservation_id: Mapped[str] = mapped_column(String(32))
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    server_group_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    # Desired-state counter (docs/contracts.md) and what the agent last confirmed.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    # The generation last sent to the host (tinystack/core/desired.py: the publisher's work list is the rows ahead).
    published_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The instance doc fields beyond the row: power, rescue, reboot, snapshot, config drive files.
    doc: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    console_log: Mapped[str | None] = mapped_column(Text, nullable=True)
    diagnostics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # onupdate: every ORM write bumps it, which the list view's render cache relies on.
    updated_at: Mapped[datetime] = mapped_column(DateTime, index=True, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # The server's volumes in attach order, loaded with it (the server view lists them); written only through
    # BlockDeviceMapping rows (tinystack/compute/volumes.py).
    bdms: Mapped[list[BlockDeviceMapping]] = relationship(
        primaryjoin="Instance.id == foreign(BlockDeviceMapping.instance_uuid)", viewonly=True, lazy="selectin",
        order_by="(BlockDeviceMapping.created_at, BlockDeviceMapping.seq)")


class BlockDeviceMapping(Base):
    """A volume on a server (Nova's BDM), from the attach request until the detach is complete."""

    __tablename__ = "compute_block_device_mapping"
    __table_args__ = (UniqueConstraint("instance_uuid", "volume_id", name="uq_compute_bdm_instance_volume"),
                      UniqueConstraint("instance_uuid", "device_name", name="uq_compute_bdm_instance_device"))
    id: Mapped[str] = mapped_column(UUID, primary_key=True)  # Nova's bdm_uuid
    instance_uuid: Mapped[str] = mapped_column(UUID, index=True)
    volume_id: Mapped[str] = mapped_column(UUID, index=True)
    attachment_id: Mapped[str] = mapped_column(UUID, unique=True)
    device_name: Mapped[str] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))  # attaching, attached, detaching
    # What the volume service's reserve answered: {"driver_volume_type", "path", "format"}.
    connection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The instance generation that asked for the current state: an agent report at or past it settles it.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # Attach order among rows created in the same instant.
    seq: Mapped[int] = mapped_column(Integer, default=0)
    # Nova's boot_index: 0 for the volume a volume-backed server boots from (its /dev/vda), else None.
    boot_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class InstanceAction(Base):
    __tablename__ = "compute_instance_action"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(UUID, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(PROJECT)
    user_id: Mapped[str] = mapped_column(String(255))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    start_time: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class ComputeNode(Base):
    __tablename__ = "compute_node"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    local_gb: Mapped[int] = mapped_column(Integer)
    hypervisor_type: Mapped[str] = mapped_column(String(64))
    hypervisor_version: Mapped[int] = mapped_column(Integer)
    cpu_info: Mapped[Any] = mapped_column(JSON)
    running_vms: Mapped[int] = mapped_column(Integer, default=0)
    host_ip: Mapped[str] = mapped_column(String(64), default="127.0.0.1")
    # The node's console bridge (``address:port``) when its agent serves one, for a proxy on another machine.
    console_address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Service(Base):
    __tablename__ = "compute_service"
    uuid: Mapped[str] = mapped_column(UUID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Aggregate(Base):
    __tablename__ = "compute_aggregate"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # Nova keeps the availability zone here too, as the "availability_zone" key.
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AggregateHost(Base):
    """A host in an aggregate: a row each, so two concurrent adds of the same host cannot both succeed."""

    __tablename__ = "compute_aggregate_host"
    aggregate_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("compute_aggregate.id", ondelete="CASCADE"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class ServerGroup(Base):
    __tablename__ = "compute_server_group"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    members: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Migration(Base):
    __tablename__ = "compute_migration"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    instance_id: Mapped[str] = mapped_column(UUID, index=True)
    project_id: Mapped[str] = mapped_column(PROJECT)
    user_id: Mapped[str] = mapped_column(String(255))
    migration_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    source_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    old_flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    new_flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


TABLES = [m.__table__ for m in (Flavor, FlavorAccess, KeyPair, Quota, QuotaClass, Instance, BlockDeviceMapping,
                                InstanceAction, ComputeNode, Service, Aggregate, AggregateHost, ServerGroup,
                                Migration)]
