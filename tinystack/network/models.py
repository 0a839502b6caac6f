"""Networking tables: networks, subnets, subnet pools, ports and their IP allocations, routers, floating
IPs, security groups, tags, quotas, agents, and the controller's published-document generations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Double, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tinystack.core.db import Base

UUID = String(36)
PROJECT = String(255)


def utcnow() -> datetime:
    """Naive UTC with whole seconds, as Neutron renders it."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class StandardAttrs:
    """Neutron's standard attributes: description, timestamps, revision number (tags live in their table)."""

    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class Network(StandardAttrs, Base):
    __tablename__ = "network_networks"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    network_type: Mapped[str] = mapped_column(String(16))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # "<type>:<physnet>:<segid>" for every segment that must be unique (flat, vlan, vxlan); NULL for local.
    # The unique index makes concurrent segment allocation safe across API processes.
    segment_key: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns_domain: Mapped[str] = mapped_column(String(255), default="")


class SubnetPool(StandardAttrs, Base):
    __tablename__ = "network_subnetpools"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_scope_id: Mapped[str | None] = mapped_column(UUID, nullable=True)


class AddressScope(StandardAttrs, Base):
    __tablename__ = "network_address_scopes"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class Subnet(StandardAttrs, Base):
    __tablename__ = "network_subnets"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("network_networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subnetpool_id: Mapped[str | None] = mapped_column(UUID, nullable=True)


class Port(StandardAttrs, Base):
    __tablename__ = "network_ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address", name="uq_network_ports_network_mac"),)
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("network_networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    host_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    vnic_type: Mapped[str] = mapped_column(String(32), default="normal")
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    extra_dhcp_opts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class IPAllocation(Base):
    """One address of one port. The primary key is what makes IPAM safe under concurrency."""

    __tablename__ = "network_ipallocations"
    subnet_id: Mapped[str] = mapped_column(ForeignKey("network_subnets.id", ondelete="CASCADE"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("network_ports.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(UUID, index=True)


class PortSecurityGroup(Base):
    __tablename__ = "network_port_security_groups"
    port_id: Mapped[str] = mapped_column(ForeignKey("network_ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("network_security_groups.id", ondelete="CASCADE"), primary_key=True, index=True)


class SecurityGroup(StandardAttrs, Base):
    __tablename__ = "network_security_groups"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)


class DefaultSecurityGroup(Base):
    """One row per project: the primary key makes 'create the default group on first use' race-free."""

    __tablename__ = "network_default_security_groups"
    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(ForeignKey("network_security_groups.id", ondelete="CASCADE"))


class SecurityGroupRule(StandardAttrs, Base):
    __tablename__ = "network_security_group_rules"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("network_security_groups.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("network_security_groups.id", ondelete="CASCADE"), nullable=True, index=True)


class Router(StandardAttrs, Base):
    __tablename__ = "network_routers"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)


class FloatingIP(StandardAttrs, Base):
    __tablename__ = "network_floatingips"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    floating_network_id: Mapped[str] = mapped_column(ForeignKey("network_networks.id"), index=True)
    floating_port_id: Mapped[str] = mapped_column(UUID)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    port_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    # dns-integration: the name and domain given at create (Neutron keeps both and never changes them).
    dns_name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="", server_default="")


class Trunk(StandardAttrs, Base):
    """A trunk (the ``trunk`` extension): one parent port carrying the subports' networks as VLANs. The unique
    parent makes 'a port is the parent of at most one trunk' hold under concurrent creates."""

    __tablename__ = "network_trunks"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("network_ports.id"), unique=True)


class SubPort(Base):
    """One subport of a trunk. The port is the key (a port is in at most one trunk), and a trunk uses each
    segmentation id once."""

    __tablename__ = "network_trunk_subports"
    __table_args__ = (UniqueConstraint("trunk_id", "segmentation_type", "segmentation_id",
                                       name="uq_network_trunk_subports_segmentation"),)
    port_id: Mapped[str] = mapped_column(ForeignKey("network_ports.id"), primary_key=True)
    trunk_id: Mapped[str] = mapped_column(ForeignKey("network_trunks.id", ondelete="CASCADE"), index=True)
    segmentation_type: Mapped[str] = mapped_column(String(32))
    segmentation_id: Mapped[int] = mapped_column(Integer)


class Tag(Base):
    __tablename__ = "network_tags"
    resource_id: Mapped[str] = mapped_column(UUID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class Quota(Base):
    __tablename__ = "network_quotas"
    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


class Agent(Base):
    __tablename__ = "network_agents"
    __table_args__ = (UniqueConstraint("agent_type", "host", name="uq_network_agents_type_host"),)
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(64))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255), index=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    configurations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_timestamp: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Double: a plain Float is single precision on MySQL, seconds since 1970 to the nearest 128 s.
    heartbeat_epoch: Mapped[float] = mapped_column(Double, default=0.0)


class PublishedDoc(Base):
    """One document's desired state as the controller last computed it (its generation, digest and hosts), and
    what of it went out on the bus: ``published_generation`` and the hosts that got it (``published_hosts``). A
    row whose generation is ahead is on the controller's work list (tinystack/core/desired.py); the row of a
    removed resource stays, with digest ``gone``, until its deletes went out."""

    __tablename__ = "network_published_docs"
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64), default="")
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    published_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    published_hosts: Mapped[list[str]] = mapped_column(JSON, default=list)


class DocGenerationFloor(Base):
    """One row: the highest generation any removed document reached. A document that comes back (a port bound
    again, a network's DHCP after its subnets were re-created) starts above it, so that an agent that still
    remembers the old generation takes the new document (generations never go back for an id)."""

    __tablename__ = "network_doc_generation_floor"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(Integer, default=0)


TABLES = [m.__table__ for m in (Network, SubnetPool, Subnet, Port, IPAllocation, SecurityGroup, PortSecurityGroup,
                                 DefaultSecurityGroup, SecurityGroupRule, Router, FloatingIP, Trunk, SubPort, Tag,
                                 Quota, Agent, PublishedDoc, DocGenerationFloor)]
