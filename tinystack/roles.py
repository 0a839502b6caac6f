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

from tinystack.cloud import AGENTS, SERVICES, Cloud
from tinystack.config import Config

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
