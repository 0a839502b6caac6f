"""The deployment roles (issue 15): which parts of the one wiring in tinystack/cloud.py each command runs.

- ``up``: everything in one process (the APIs, the node agents, the cloud's periodic work).
- ``api``: the APIs (all, or ``--services``), no agents, no periodic sweeps: stateless, as many as wanted
  behind a load balancer. They still publish what they commit (the desired-state publishers are
  level-triggered and idempotent) and fold the agents' reports from the shared queues.
- ``conductor``: no listening API; the services' background side, including the once-only periodic work under
  database leases (finishing deletes on down hosts, the image sweeper, the default image). Run two: one works,
  the other takes its leases over when it dies.
- ``agent``: a node's agents only (tinystack/cloud.py ``NodeAgents``).
"""

from __future__ import annotations

from tinystack import nodes as nodes_mod
from tinystack.cloud import AGENTS, SERVICES, Cloud
from tinystack.config import Config
from tinystack.core import consolebridge

SPLIT_ROLES = ("api", "conductor")


class RoleError(ValueError):
    """A role asked for something the configuration cannot give (said to the operator, exit status 2)."""


def service_names() -> list[str]:
    return [spec.name for spec in SERVICES]


def parse_services(text: str | None) -> frozenset[str] | None:
    """``--services compute,image``: the APIs to listen for; None for every one. Unknown names are an error."""
    if not text:
        return None
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(service_names()))
    if unknown or not names:
        raise RoleError(f"unknown service(s) {', '.join(unknown) or '(none given)'}; "
                        f"known: {', '.join(service_names())}")
    return names


def check_split(cfg: Config, role: str) -> None:
    """Split processes meet only through the database and the broker: both must be shared ones."""
    if not cfg.get("bus", "transport_url").startswith("amqp"):
        raise RoleError(f"tinystack {role}: [bus] transport_url must name the RabbitMQ broker every process "
                        "of the cloud uses (amqp://...)")
    if not cfg.get("database", "connection") or cfg.database_url.startswith("sqlite"):
        raise RoleError(f"tinystack {role}: [database] connection must name the PostgreSQL or MySQL database "
                        "every process of the cloud uses")


def check_console(cfg: Config, role: str, services: frozenset[str] | None = None) -> None:
    """A console proxy (``tinystack api`` serving ``console``) or node (``tinystack agent``) of a split cloud signs or
    checks console bridge requests with ``[console] node_secret``: without it no console would open, so say so
    at start."""
    if role == "api" and services is not None and "console" not in services:
        return
    try:
        secret = consolebridge.load(cfg).secret
    except ValueError as exc:
        raise RoleError(f"tinystack {role}: {exc}") from None
    if role in ("api", "agent") and not secret:
        raise RoleError(f"tinystack {role}: [console] node_secret must be set, the same on every API and agent "
                        "machine: the console proxy signs its requests to the nodes' console bridges with it "
                        "(docs/consoles.md)")


def bridge_listen(cfg: Config) -> str:
    """Where ``tinystack agent`` serves its console bridge: ``[console] node_listen``, by default the node's
    ``[compute] live_migration_inbound_addr`` (its underlay/management address, where other machines reach it)
    or 127.0.0.1, on port 6081 (a free port per node with ``[nodes]`` extras)."""
    listen = consolebridge.load(cfg).listen
    if listen:
        return listen
    addr = cfg.values.get("compute", {}).get("live_migration_inbound_addr", "").strip() or "127.0.0.1"
    # Several nodes in this process ([nodes] extras): each its own free port, reported with its node.
    port = 0 if nodes_mod.extra_names(cfg) else consolebridge.DEFAULT_PORT
    return consolebridge.join_address(addr, port)


def cloud_for(role: str, cfg: Config, services: frozenset[str] | None = None) -> Cloud:
    """The ``Cloud`` a role runs. Every service is built in each (one service calls another in-process); the
    role decides what listens, what bootstraps and what does the periodic work."""
    if role == "up":
        return Cloud(cfg, list(SERVICES), list(AGENTS))
    if role == "api":
        return Cloud(cfg, list(SERVICES), [], serve=services, bootstrap=True, singletons=False)
    if role == "conductor":
        return Cloud(cfg, list(SERVICES), [], serve=frozenset(), bootstrap=False, singletons=True)
    raise RoleError(f"unknown role {role}")
