"""The compute scheduler's vocabulary: what a boot asks for (``RequestSpec``), what the hosts look like
(``HostState`` from a ``HostStateSource``), what comes back (``Selection``) and ``NoValidHost``.

``Scheduler`` (scheduler.py) walks its copy of placement's usage (cache.py) in weighed order, filters,
and claims on the best host; the compute conductor implements ``HostStateSource`` from its compute
nodes, services and aggregates (hoststate.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class NoValidHost(Exception):
    """No host can take the request; ``reason`` says why (it becomes the server's fault message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"No valid host was found. {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Flavor:
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    extra_specs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerGroup:
    """A server group and where its members already run (one entry per member, so a host may repeat)."""

    uuid: str
    policy: str  # affinity, anti-affinity, soft-affinity, soft-anti-affinity
    hosts: tuple[str, ...] = ()
    max_server_per_host: int = 1  # the anti-affinity rule (microversion 2.64)


@dataclass
class RequestSpec:
    """One boot (or move) request, as the conductor hands it to the scheduler.

    - ``flavor``: sizes and extra specs (``resources:<RC>=N`` overrides an amount, ``trait:<NAME>=required``
      or ``forbidden`` asks placement for traits, ``aggregate_instance_extra_specs:<key>`` or unscoped keys
      must match host aggregate metadata).
    - ``image_properties``: ``hw_architecture`` (or ``architecture``), ``img_hv_type`` (or ``hypervisor_type``).
    - ``availability_zone``; ``force_host`` / ``force_node`` from an admin's ``az:host[:node]``.
    - ``server_group``; ``ignore_hosts`` (e.g. the source host of a migration, hosts already tried).
    - ``project_id`` / ``user_id`` own the allocations; ``instance_uuids`` are the consumers, one per
      server to place (``select_destinations(spec, num)`` uses the first ``num``).
    """

    flavor: Flavor
    project_id: str
    user_id: str
    instance_uuids: list[str]
    image_properties: Mapping[str, Any] = field(default_factory=dict)
    availability_zone: str | None = None
    force_host: str | None = None
    force_node: str | None = None
    server_group: ServerGroup | None = None
    ignore_hosts: frozenset[str] | set[str] | list[str] = frozenset()

    def resources(self) -> dict[str, int]:
        """The amounts to claim, as Nova computes them (swap rounded up to whole GiB of disk)."""
        f = self.flavor
        out = {"VCPU": f.vcpus, "MEMORY_MB": f.memory_mb,
               "DISK_GB": f.root_gb + f.ephemeral_gb + math.ceil(f.swap_mb / 1024)}
        for key, value in f.extra_specs.items():
            if key.startswith("resources:"):
                out[key.split(":", 1)[1]] = int(value)
        return {rc: n for rc, n in out.items() if n > 0}

    def traits(self) -> tuple[list[str], list[str]]:
        """Required and forbidden traits from ``trait:<NAME>`` extra specs and image properties."""
        required, forbidden = [], []
        for source in (self.flavor.extra_specs, self.image_properties):
            for key, value in source.items():
                if key.startswith("trait:"):
                    if str(value) == "required":
                        required.append(key[6:])
                    elif str(value) == "forbidden":
                        forbidden.append(key[6:])
        return required, forbidden


@dataclass(frozen=True)
class Aggregate:
    uuid: str
    name: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostState:
    """What the scheduler needs to know about one compute host besides its placement usage."""

    host: str
    rp_uuid: str
    availability_zone: str = "nova"
    aggregates: tuple[Aggregate, ...] = ()
    enabled: bool = True  # the compute service is enabled (os-services)
    up: bool = True  # its heartbeat is recent (service_down_time)
    hypervisor_type: str = "QEMU"
    architecture: str = "x86_64"
    node: str | None = None  # the hypervisor node name; the host name when None


@dataclass(frozen=True)
class Selection:
    host: str
    rp_uuid: str
    nodename: str
    allocations: Mapping[str, Mapping[str, int]]


class HostStateSource(Protocol):
    """Where the scheduler reads host states; the compute conductor implements it over its database.

    ``revision`` changes whenever ``hosts`` would answer differently because of a write (a service
    disabled, an aggregate changed); the scheduler re-reads the hosts then, and every few seconds anyway."""

    def hosts(self) -> list[HostState]: ...

    def revision(self) -> int: ...


class InMemoryHostStates:
    """A ``HostStateSource`` over a dict, for tests and the scale benchmark."""

    def __init__(self, hosts: list[HostState] | None = None) -> None:
        self._hosts = {h.host: h for h in hosts or []}
        self._revision = 0

    def put(self, host: HostState) -> None:
        self._hosts[host.host] = host
        self._revision += 1

    def remove(self, host: str) -> None:
        self._hosts.pop(host, None)
        self._revision += 1

    def revision(self) -> int:
        return self._revision

    def hosts(self) -> list[HostState]:
        return list(self._hosts.values())


__all__ = ["Aggregate", "Flavor", "HostState", "HostStateSource", "InMemoryHostStates", "NoValidHost",
           "RequestSpec", "Selection", "ServerGroup"]
