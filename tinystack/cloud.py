"""Wires the services into one running cloud: database, bus, policy, the APIs on their ports, and the
node agents. ``tinystack up`` runs a ``Cloud``; tests start one in-process on loopback with port 0.

With ``[nodes]`` extras the agents run once per node, each node with its own host name and namespace, joined
by VXLAN over an underlay the cloud creates and removes (tinystack/nodes.py).

The split roles (``tinystack api``, ``conductor``; tinystack/roles.py) run the same wiring with parts left out:
``serve`` limits the APIs this process listens for, ``bootstrap`` the identity bootstrap and clouds.yaml,
``singletons`` the cloud's periodic once-only work (core/lease.py ``SINGLETONS``).

To add a service: append a ``ServiceSpec`` to ``SERVICES`` in tinystack/registry.py (its factory may register a
service object in ``Runtime.services`` for other services to call), and an ``AgentSpec`` to ``AGENTS`` if it runs
a node agent. Factories run in list order, so a service can use those listed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tinystack import nodes as nodes_mod
from tinystack.config import Config
from tinystack.core.bus import Bus, InProcessBus
from tinystack.core.db import CORE_MIGRATIONS, Database, new_id
from tinystack.core.lease import SINGLETONS, Lease, exclusive
from tinystack.core.policy import PolicyEngine
from tinystack.core.web import ServiceRunner
from tinystack.identity import bootstrap, clouds_yaml
from tinystack.identity.service import IdentityService
from tinystack.registry import AGENTS, SERVICES, Agent, AgentSpec, Runtime, ServiceSpec, dashboard_app, map_models

# The cli and the tests import the registry's names from here, the cloud's one entry point.
__all__ = ["AGENTS", "SERVICES", "Agent", "AgentSpec", "Cloud", "NodeAgents", "Runtime", "ServiceSpec", "make_bus",
           "map_models", "share_identity_changes"]

log = logging.getLogger(__name__)


async def make_bus(cfg: Config) -> Bus:
    """In-process by default; RabbitMQ when ``[bus] transport_url`` names a broker (amqp://...)."""
    url = cfg.get("bus", "transport_url")
    if not url:
        return InProcessBus()
    from tinystack.core.rabbitbus import RabbitBus

    bus = RabbitBus(url, cfg.get("bus", "exchange") or "tinystack")
    await bus.connect()
    return bus


IDENTITY_CHANGED = "identity.changed"


def share_identity_changes(identity: IdentityService, bus: Bus, loop: asyncio.AbstractEventLoop) -> None:
    """Every identity write tells the other API processes, which drop their cached token validations and
    reload the revocation events (fan-out: each process must apply it). A process ignores its own message:
    its write already did that."""
    origin = new_id()
    tasks: set[asyncio.Task[None]] = set()

    async def publish() -> None:
        try:
            await bus.publish(IDENTITY_CHANGED, {"origin": origin})
        except Exception as exc:  # the bus is closing or away; others' caches then expire on their own
            log.warning("could not announce an identity change: %s", exc)

    def send() -> None:
        task = loop.create_task(publish())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_write() -> None:  # runs in whichever thread wrote
        with contextlib.suppress(RuntimeError):  # the loop has closed: the process is stopping
            loop.call_soon_threadsafe(send)

    async def on_changed(msg: dict[str, Any]) -> None:
        if msg.get("origin") != origin:
            await asyncio.to_thread(identity.tokens.load_revocations)

    identity.on_change.append(on_write)
    bus.subscribe(IDENTITY_CHANGED, on_changed)


@dataclass
class Cloud:
    config: Config
    services: list[ServiceSpec] = field(default_factory=lambda: list(SERVICES))
    agents: list[AgentSpec] = field(default_factory=lambda: list(AGENTS))
    urls: dict[str, str] = field(default_factory=dict)
    runtime: Runtime | None = None
    node_agents: NodeAgents | None = None
    # Whether to serve the dashboard on ``[ports] dashboard`` (after the APIs; ``urls["dashboard"]``).
    dashboard: bool = True
    serve: frozenset[str] | None = None  # the APIs this process listens for; None: every one
    bootstrap: bool = True  # identity's bootstrap, the catalog and clouds.yaml/service.yaml
    singletons: bool = True  # sweepers, housekeeping under leases, the default image's registration
    listening: dict[str, str] = field(default_factory=dict)  # service -> the address this process bound
    _runners: list[web.AppRunner] = field(default_factory=list)
    _frontends: list[web.AppRunner] = field(default_factory=list)

    @property
    def clouds_yaml(self) -> Path:
        return self.config.state_dir / "clouds.yaml"

    @property
    def service_yaml(self) -> Path:
        return self.config.state_dir / "service.yaml"

    async def start(self) -> None:
        token = SINGLETONS.set(self.singletons)
        try:
            await self._start()
        finally:
            SINGLETONS.reset(token)  # the tasks the services spawned keep the value they started with

    async def _start(self) -> None:
        started = time.monotonic()
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(cfg.state_dir, 0o700)
        db = Database(cfg.database_url)
        db.migrate("core", CORE_MIGRATIONS, ahead_ok=True)
        # API processes starting together on one database: one at a time migrates (Alembic's own version
        # tables do not guard against two upgrading at once).
        async with exclusive(Lease(db, "migrations")):
            for spec in self.services:
                if spec.migrations is not None:
                    db.migrate(spec.name, spec.migrations, ahead_ok=True)
        map_models(self.services)
        policy_file = cfg.get("oslo_policy", "policy_file")
        policy = PolicyEngine(Path(policy_file) if policy_file else cfg.state_dir / "policy.yaml")
        bus = await make_bus(cfg)
        identity = IdentityService(cfg, db, policy)
        share_identity_changes(identity, bus, asyncio.get_running_loop())
        self.runtime = rt = Runtime(cfg, db, bus, policy, identity)
        ports: dict[str, int] = {}
        for spec in self.services:
            app = spec.factory(rt).build()
            runner = ServiceRunner(app)
            await runner.setup()
            self._runners.append(runner)
            if self.serve is None or spec.name in self.serve:
                site = web.TCPSite(runner, cfg.bind, cfg.port(spec.name), reuse_address=True)
                await site.start()
                ports[spec.name] = runner.addresses[-1][1]
                self.listening[spec.name] = f"http://{cfg.bind}:{ports[spec.name]}"
        host = cfg.public_host if cfg.public_host not in ("0.0.0.0", "::") else "127.0.0.1"
        # The catalog names the public port (a load balancer's) when one is set, else the bound one.
        public = {spec.name: cfg.get("public_ports", spec.name) or ports.get(spec.name) or cfg.port(spec.name)
                  for spec in self.services}
        self.urls = {spec.name: f"http://{host}:{public[spec.name]}{spec.url_suffix}" for spec in self.services}
        rt.urls.update(self.urls)
        if self.bootstrap:
            await self._bootstrap()
        if self.dashboard:
            front = web.AppRunner(dashboard_app(rt), access_log=None, handle_signals=False)
            await front.setup()
            await web.TCPSite(front, cfg.bind, cfg.port("dashboard"), reuse_address=True).start()
            self._frontends.append(front)
            # rt.urls too: the console proxy lets the dashboard frame its page.
            self.urls["dashboard"] = rt.urls["dashboard"] = f"http://{host}:{front.addresses[-1][1]}"
        self.node_agents = NodeAgents(cfg, self.agents)
        await self.node_agents.start(rt.bus)
        if self.agents:
            rt.local_hosts.update(self.hosts)
        if self.singletons:
            from tinystack.guest.register import ensure_default_image

            # Registers the cached default image now, or builds it in the background on a first start.
            await ensure_default_image(rt)
        log.info("cloud started in %.2fs: %s", time.monotonic() - started, self.urls)

    async def _bootstrap(self) -> None:
        assert self.runtime is not None
        cfg, db, identity = self.config, self.runtime.db, self.runtime.identity
        entries = [bootstrap.CatalogEntry(kind, name, self.urls[spec.name])
                   for spec in self.services if spec.catalog_type
                   for kind, name in ((spec.catalog_type, spec.catalog_name), *spec.aliases)]
        known = clouds_yaml.known_passwords(self.clouds_yaml, self.service_yaml)
        # Idempotent, but two processes inserting the same users at once would collide: one at a time.
        async with exclusive(Lease(db, "identity.bootstrap")):
            with identity.changing() as s:
                passwords = bootstrap.run(s, cfg.get("DEFAULT", "region"), known, entries, identity.hash_rounds)
        clouds_yaml.write(self.clouds_yaml, self.urls["identity"], cfg.get("DEFAULT", "region"), passwords)
        clouds_yaml.write_service(self.service_yaml, self.urls["identity"], passwords[bootstrap.SERVICE_USER])

    @property
    def apps(self) -> dict[str, web.Application]:
        """The running API applications by service name (their routers list every route; the fuzz tests walk them)."""
        return {spec.name: runner.app for spec, runner in zip(self.services, self._runners, strict=False)}

    @property
    def hosts(self) -> list[str]:
        """The nodes this process runs agents for: ``[DEFAULT] host``, then the ``[nodes]`` extras."""
        return [self.config.host, *nodes_mod.extra_names(self.config)]

    async def stop(self, cleanup: bool = True) -> None:
        if self.singletons:
            from tinystack.guest.register import stop_building

            await stop_building()
        if self.node_agents is not None:
            await self.node_agents.stop(cleanup)
        for runner in [*self._frontends, *reversed(self._runners)]:
            await runner.cleanup()
        self._runners.clear()
        self._frontends.clear()
        if self.runtime is not None:
            await self.runtime.bus.close()
            self.runtime.db.dispose()
            self.runtime = None


@dataclass
class NodeAgents:
    """The node agents of this machine: every agent of ``agents`` for the one node, or, with ``[nodes]`` extras,
    for each node in its own namespace and configuration (host name, underlay address, VXLAN peers), after the
    underlay they share. ``tinystack up`` runs them beside the APIs; ``tinystack agent`` alone."""

    config: Config
    agents: list[AgentSpec] = field(default_factory=lambda: list(AGENTS))
    # Whether the primary node also runs the storage agents (``primary_only``): always beside the APIs; with
    # ``tinystack agent`` only on the host ``[volume] volume_host`` names, the one the volume API sends to.
    with_storage: bool = True
    running: list[Agent] = field(default_factory=list)
    _underlay: str | None = None

    async def start(self, bus: Bus) -> None:
        nodes = nodes_mod.plan(self.config)
        # The fake network driver (tests, benchmarks) touches no host: no underlay for it either.
        if nodes and self.config.values.get("network", {}).get("driver", "linux").strip().lower() != "fake":
            from tinystack.network.drivers.linux import ensure_underlay

            self._underlay = nodes_mod.underlay_netns(self.config.host)
            await ensure_underlay(self._underlay)
        for config, primary in [(n.config, n.primary) for n in nodes] or [(self.config, True)]:
            for spec in self.agents:
                if spec.primary_only and not (primary and self.with_storage):
                    continue
                agent = spec.factory(config, bus)
                await agent.start()
                self.running.append(agent)

    async def stop(self, cleanup: bool) -> None:
        """Agents first (they remove their namespaces with ``cleanup``), then the underlay they were plugged into."""
        for agent in reversed(self.running):
            try:
                await agent.stop(cleanup)
            except Exception:
                log.exception("stopping an agent failed")
        self.running.clear()
        if self._underlay is not None and cleanup:
            from tinystack.network.drivers.linux import remove_underlay

            await remove_underlay(self._underlay)
            self._underlay = None
