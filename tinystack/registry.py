"""What a cloud runs and how each piece is built: the ``Runtime`` a service factory gets, the ``SERVICES``
(APIs, in start order) and the ``AGENTS`` (node agents) that ``tinystack/cloud.py`` wires together."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web
from sqlalchemy.orm import configure_mappers

from tinystack.compute.service import MIGRATIONS as COMPUTE_MIGRATIONS
from tinystack.config import Config
from tinystack.console.service import MIGRATIONS as CONSOLE_MIGRATIONS
from tinystack.core.bus import Bus
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceKey
from tinystack.core.web import ServiceApp
from tinystack.identity.service import MIGRATIONS as IDENTITY_MIGRATIONS
from tinystack.identity.service import IdentityService
from tinystack.image.interface import IMAGE
from tinystack.image.service import MIGRATIONS as IMAGE_MIGRATIONS
from tinystack.network.interface import NETWORK
from tinystack.network.service import MIGRATIONS as NETWORK_MIGRATIONS
from tinystack.placement.interface import PLACEMENT
from tinystack.placement.service import MIGRATIONS as PLACEMENT_MIGRATIONS
from tinystack.volume.interface import VOLUME
from tinystack.volume.service import MIGRATIONS as VOLUME_MIGRATIONS

P = TypeVar("P")


@dataclass
class Runtime:
    """The shared handles a service factory gets."""

    config: Config
    db: Database
    bus: Bus
    policy: PolicyEngine
    identity: IdentityService
    # Service objects by name ("image", "network", "compute", ...): the one module of another service a
    # service may call is its service.py, and this is where it finds the instance.
    services: dict[str, Any] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    # The nodes whose agents run in this process (``tinystack up``), once they start: the console proxy opens
    # their sockets itself and reaches the others through their console bridges.
    local_hosts: set[str] = field(default_factory=set)

    def provide(self, key: ServiceKey[P], svc: P) -> None:
        """Register ``svc`` under ``key``: mypy checks it offers the interface the other services call (when not,
        it says it "cannot infer value of type parameter P")."""
        self.services[key.name] = svc


@dataclass(frozen=True)
class ServiceSpec:
    """One API: its port name, catalog entry, migrations and factory."""

    name: str
    catalog_type: str
    catalog_name: str
    url_suffix: str
    factory: Callable[[Runtime], ServiceApp]
    migrations: Path | None = None
    # More catalog entries at the same URL: (type, name), for clients that look the service up by an older type.
    aliases: tuple[tuple[str, str], ...] = ()


class Agent(Protocol):
    """A node agent: reconciles this host with the desired state it receives over the bus."""

    async def start(self) -> None: ...

    async def stop(self, cleanup: bool) -> None:
        """Stop reconciling. ``cleanup``: also remove what it made on the host (``tinystack up`` exiting)."""


@dataclass(frozen=True)
class AgentSpec:
    """A node agent: built from one node's configuration; it talks to the API side only over the bus."""

    name: str
    factory: Callable[[Config, Bus], Agent]
    # Runs on the primary node only (storage that every node of the machine reaches), not once per node.
    primary_only: bool = False


def _identity_app(rt: Runtime) -> ServiceApp:
    from tinystack.identity.api import app

    rt.services["identity"] = rt.identity
    return app(rt.identity)


def _image_app(rt: Runtime) -> ServiceApp:
    from tinystack.image.api import app
    from tinystack.image.service import ImageService

    svc = ImageService(rt.config, rt.db, rt.policy)
    rt.provide(IMAGE, svc)
    return app(svc, rt.identity.validate)


def _placement_app(rt: Runtime) -> ServiceApp:
    from tinystack.placement.api import app
    from tinystack.placement.service import PlacementService

    svc = PlacementService(rt.config, rt.db, rt.policy)
    rt.provide(PLACEMENT, svc)
    return app(svc, rt.identity.validate)


def _metadata_app(rt: Runtime) -> ServiceApp:
    from tinystack.metadata.api import app
    from tinystack.metadata.service import MetadataService

    rt.services["metadata"] = svc = MetadataService(rt.config, rt.services)
    return app(svc)


def _network_app(rt: Runtime) -> ServiceApp:
    from sqlalchemy import select

    from tinystack.identity.models import Project
    from tinystack.metadata import settings as metadata_settings
    from tinystack.network.api import app
    from tinystack.network.service import NetworkService

    def project_id(name: str) -> str | None:
        with rt.identity.session() as s:
            return s.scalar(select(Project.id).where(Project.name == name, Project.domain_id == "default"))

    svc = NetworkService(rt.config, rt.db, rt.policy)
    rt.provide(NETWORK, svc)
    # ``[metadata] socket``: the processes of a split cloud must all publish the same upstream, or each one's
    # documents would move the nodes' metadata proxies to its own socket in turn.
    return app(svc, rt.identity.validate, rt.bus, str(metadata_settings.load(rt.config).socket), project_id)


def _object_app(rt: Runtime) -> ServiceApp:
    from sqlalchemy import select

    from tinystack.identity.assignments import create_role
    from tinystack.identity.models import Role
    from tinystack.object.service import RESELLER_ADMIN_ROLE, make

    # Swift's keystone auth lets this role act on every account; DevStack creates it with Swift.
    with rt.identity.session() as s:
        missing = s.scalar(select(Role.id).where(Role.name == RESELLER_ADMIN_ROLE, Role.domain_id == "")) is None
    if missing:
        with rt.identity.changing() as s:
            create_role(s, {"name": RESELLER_ADMIN_ROLE})
    rt.services["object"] = svc = make(rt.config)
    return svc.app(rt.identity.validate)  # the proxy, and this machine's storage node with it


def _network_agent(config: Config, bus: Bus) -> Agent:
    from tinystack.network import agent_settings
    from tinystack.network.agent import NetworkAgent
    from tinystack.network.drivers.base import NetworkDriver

    settings = agent_settings.load(config)  # host = config.host; [network] driver, external_netns, ...
    driver: NetworkDriver
    if settings.driver == "fake":
        from tinystack.network.drivers.fake import FakeDriver

        driver = FakeDriver()
    else:
        from tinystack.network.drivers.linux import LinuxDriver

        driver = LinuxDriver(settings)
    return NetworkAgent(bus, settings, driver)


# Test clouds set ``[DEFAULT] host`` and ``[network] external_netns`` (tests/livecloud.py) so their agents
# never wire the external network into the machine itself.
NETWORK_AGENT = AgentSpec("network", _network_agent)


def _compute_agent(config: Config, bus: Bus) -> Agent:
    from tinystack.compute.agent import build

    return build(config, bus)  # [compute] driver = qemu (default) | fake


# Test clouds run it with ``[compute] driver = fake`` unless a test boots real guests (tests/livecloud.py).
COMPUTE_AGENT = AgentSpec("compute", _compute_agent)


def _compute_app(rt: Runtime) -> ServiceApp:
    from tinystack.compute.api import app
    from tinystack.compute.service import ComputeService

    rt.services["compute"] = svc = ComputeService(rt.config, rt.db, rt.bus, rt.policy, rt.services)
    return app(svc, rt.identity.validate)


def _volume_app(rt: Runtime) -> ServiceApp:
    from tinystack.volume.api import app
    from tinystack.volume.service import VolumeService

    svc = VolumeService(rt.config, rt.db, rt.bus, rt.policy, rt.services)
    rt.provide(VOLUME, svc)
    return app(svc, rt.identity.validate)


def _console_app(rt: Runtime) -> ServiceApp:
    from tinystack.console.api import app
    from tinystack.console.service import ConsoleService

    svc = ConsoleService(rt.config, rt.db, rt.policy, rt.services, rt.urls, rt.local_hosts)
    rt.services["console"] = svc
    return app(svc)


def _volume_agent(config: Config, bus: Bus) -> Agent:
    from tinystack.volume.agent import build

    return build(config, bus)  # [volume] driver = file (default) | fake


# Volume files live under one volumes_path that every node of the machine opens: one agent owns them.
VOLUME_AGENT = AgentSpec("volume", _volume_agent, primary_only=True)


def _backup_agent(config: Config, bus: Bus) -> Agent:
    from tinystack.volume.backup_agent import build

    return build(config, bus)  # reads the volume agent's files, writes object storage


# Beside the volume agent, on the volume files it owns.
BACKUP_AGENT = AgentSpec("backup", _backup_agent, primary_only=True)


SERVICES: list[ServiceSpec] = [
    ServiceSpec("identity", "identity", "keystone", "/v3", _identity_app, IDENTITY_MIGRATIONS),
    ServiceSpec("image", "image", "glance", "", _image_app, IMAGE_MIGRATIONS),
    ServiceSpec("placement", "placement", "placement", "", _placement_app, PLACEMENT_MIGRATIONS),
    ServiceSpec("network", "network", "neutron", "", _network_app, NETWORK_MIGRATIONS),
    ServiceSpec("volume", "block-storage", "cinder", "/v3/$(project_id)s", _volume_app, VOLUME_MIGRATIONS,
                aliases=(("volumev3", "cinderv3"),)),
    ServiceSpec("compute", "compute", "nova", "/v2.1", _compute_app, COMPUTE_MIGRATIONS),
    ServiceSpec("object", "object-store", "swift", "/v1/AUTH_$(project_id)s", _object_app),
    # Nova's metadata API has no catalog entry: guests reach it through the proxies, never through the catalog.
    ServiceSpec("metadata", "", "", "", _metadata_app),
    # The console proxy (nova-novncproxy's place): clients get its URLs from the compute API, not the catalog.
    ServiceSpec("console", "", "", "", _console_app, CONSOLE_MIGRATIONS),
]

AGENTS: list[AgentSpec] = [NETWORK_AGENT, COMPUTE_AGENT, VOLUME_AGENT, BACKUP_AGENT]


def dashboard_app(rt: Runtime) -> web.Application:
    """The dashboard (port ``[ports] dashboard``): a client of the APIs above, started once their URLs are known.
    It has no catalog entry and no fault format: it is not an OpenStack API."""
    from tinystack.dashboard.app import Dashboard

    return Dashboard(rt.urls["identity"], rt.config.get("DEFAULT", "region")).build()


def map_models(services: list[ServiceSpec]) -> None:
    """Import every service's models and configure the shared mapper registry, before any service runs.

    Services start one after another, and a started one may already query from a thread (the network
    bootstrap does at once when identity's projects exist, i.e. on every restart). Its query configures the
    registry, which then holds a later service's model class half imported: the mapper fails, and with it
    every query of the process from then on."""
    for spec in services:
        if spec.migrations is not None:
            importlib.import_module(f"tinystack.{spec.name}.models")
    configure_mappers()
