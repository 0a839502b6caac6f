"""The ``tinystack`` command: up, api, conductor, agent, storage, doctor, ring, object, manage, conformance."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tinystack import config as config_mod
from tinystack.core import log as log_mod
from tinystack.core import signals

if TYPE_CHECKING:
    from tinystack.core.metrics import MetricsServer

logger = logging.getLogger("tinystack")


def _load_config(args: argparse.Namespace) -> config_mod.Config:
    overrides = {}
    if getattr(args, "state_dir", None):
        overrides["state_dir"] = str(Path(args.state_dir).resolve())
    if getattr(args, "bind", None):
        overrides["bind"] = args.bind
    return config_mod.load(Path(args.config) if args.config else None, overrides=overrides)


async def _metrics(cfg: config_mod.Config) -> MetricsServer | None:
    """This process's ``GET /metrics`` unless ``[metrics] port`` is 0."""
    from tinystack.core.metrics import MetricsServer

    port = cfg.get_int("metrics", "port")
    if port == 0:
        return None
    server = MetricsServer(cfg.get("metrics", "bind") or cfg.bind, port)
    print(f"  metrics    http://{server.bind}:{await server.start()}/metrics", flush=True)
    return server


async def _serve(cfg: config_mod.Config, role: str = "up", services: frozenset[str] | None = None) -> None:
    from tinystack.roles import cloud_for

    cloud = cloud_for(role, cfg, services)
    metrics = None
    stop = asyncio.Event()
    signals.install(stop)
    try:
        await cloud.start()
        print("tinystack ready" if role == "up" else f"tinystack {role} ready", flush=True)
        for name, url in cloud.urls.items():
            if cloud.serve is None or name in cloud.serve:
                print(f"  {name:<10} {url}", flush=True)
        metrics = await _metrics(cfg)
        if cloud.bootstrap:
            print(f"  clouds.yaml {cloud.clouds_yaml}  (export OS_CLIENT_CONFIG_FILE={cloud.clouds_yaml})",
                  flush=True)
        await stop.wait()
        drain = float(cfg.get("DEFAULT", "drain_seconds")) if role == "api" else 0.0
        if drain > 0:
            # Behind a balancer: fail its health checks first, go on serving until it has noticed, then stop.
            from tinystack.core.web import Health

            Health.draining = True
            stop.clear()
            logger.info("draining for %.1f s before stopping", drain)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), drain)  # a second signal stops at once
        logger.info("stopping")
    finally:
        if metrics is not None:
            await metrics.stop()
        await cloud.stop()


def cmd_up(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    log_mod.setup(cfg.state_dir / "log" / "tinystack.log", debug=cfg.get_bool("DEFAULT", "debug"))
    # The default event loop, not uvloop: under uvloop a host command whose child daemonizes (QEMU) was
    # seen to hold its output pipes open until the command timed out.
    asyncio.run(_serve(cfg))
    return 0


def cmd_role(args: argparse.Namespace) -> int:
    """``tinystack api`` / ``tinystack conductor``: one role of a split cloud (tinystack/roles.py)."""
    from tinystack.roles import RoleError, check_console, check_split, parse_services

    cfg = _load_config(args)
    try:
        check_split(cfg, args.command)
        services = parse_services(getattr(args, "services", None))
        check_console(cfg, args.command, services)
    except RoleError as exc:
        print(exc, file=sys.stderr)
        return 2
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    log_mod.setup(cfg.state_dir / "log" / f"{args.command}.log", debug=cfg.get_bool("DEFAULT", "debug"))
    asyncio.run(_serve(cfg, args.command, services))
    return 0


async def _serve_agents(cfg: config_mod.Config) -> None:
    from tinystack.cloud import NodeAgents, make_bus

    bus = await make_bus(cfg)
    agents = NodeAgents(cfg, with_storage=cfg.values.get("volume", {}).get("volume_host", "").strip() == cfg.host)
    metrics = None
    stop = asyncio.Event()
    signals.install(stop)
    try:
        await agents.start(bus)
        hosts = sorted({str(getattr(a, "host", "")) for a in agents.running})
        print(f"tinystack agent ready: {', '.join(hosts)}", flush=True)
        metrics = await _metrics(cfg)
        await stop.wait()
        logger.info("stopping")
    finally:
        if metrics is not None:
            await metrics.stop()
        await agents.stop(cleanup=True)
        await bus.close()


def cmd_agent(args: argparse.Namespace) -> int:
    """Split mode: only this machine's node agents, against the APIs' RabbitMQ (design §2)."""
    cfg = _load_config(args)
    if not cfg.get("bus", "transport_url").startswith("amqp"):
        print("tinystack agent: [bus] transport_url must name the RabbitMQ broker the APIs use (amqp://...)",
              file=sys.stderr)
        return 2
    from tinystack.roles import RoleError, bridge_listen, check_console

    try:
        check_console(cfg, "agent")
    except (RoleError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    # Every compute agent of this process serves its node's consoles to the API machines' proxies.
    cfg.values.setdefault("console", {})["node_listen"] = bridge_listen(cfg)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    log_mod.setup(cfg.state_dir / "log" / f"agent-{cfg.host}.log", debug=cfg.get_bool("DEFAULT", "debug"))
    asyncio.run(_serve_agents(cfg))
    return 0


async def _serve_storage(cfg: config_mod.Config) -> None:
    from tinystack.object import settings as object_settings
    from tinystack.object.servers.node import StorageNode

    node = StorageNode(object_settings.load(cfg), build_rings=False)  # rings are shipped to storage machines
    stop = asyncio.Event()
    signals.install(stop)
    try:
        await node.start()
        print(f"tinystack storage ready: {node.settings.storage_ip} {node.ports}", flush=True)
        await stop.wait()
        logger.info("stopping")
    finally:
        await node.stop()


def cmd_storage(args: argparse.Namespace) -> int:
    """An object storage node alone: account, container and object servers over this machine's devices."""
    cfg = _load_config(args)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    log_mod.setup(cfg.state_dir / "log" / f"storage-{cfg.host}.log", debug=cfg.get_bool("DEFAULT", "debug"))
    from tinystack.object.ring.bootstrap import MissingRings

    try:
        asyncio.run(_serve_storage(cfg))
    except MissingRings as exc:
        print(f"tinystack storage: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_object_recon(args: argparse.Namespace) -> int:
    """swift-recon's summary of every object storage node in the rings (docs/object-storage.md)."""
    import json

    from tinystack.object import settings as object_settings
    from tinystack.object.servers import recon

    cfg = _load_config(args)
    report = asyncio.run(recon.gather(object_settings.load(cfg), timeout=args.timeout))
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else recon.render(report))
    return 0 if recon.healthy(report) else 1


def cmd_fernet_rotate(args: argparse.Namespace) -> int:
    from tinystack.identity.fernet import KeyRepository

    cfg = _load_config(args)
    path = cfg.get("fernet_tokens", "key_repository") or str(cfg.state_dir / "fernet-keys")
    repo = KeyRepository(Path(path), cfg.get_int("fernet_tokens", "max_active_keys"))
    primary = repo.rotate()
    print(f"rotated: key {primary} is now primary in {path}")
    return 0


def cmd_db_sync(args: argparse.Namespace) -> int:
    from tinystack.cloud import SERVICES
    from tinystack.core.db import CORE_MIGRATIONS, Database

    cfg = _load_config(args)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    db = Database(cfg.database_url)
    db.migrate("core", CORE_MIGRATIONS)
    for spec in SERVICES:
        if spec.migrations is not None:
            db.migrate(spec.name, spec.migrations)
            print(f"{spec.name}: at head")
    db.dispose()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from tinystack.doctor import run

    cfg = _load_config(args)
    found = asyncio.run(run.diagnose(cfg, listen=args.listen))
    print(run.render_json(found) if args.json else run.render_text(found, verbose=args.verbose))
    return 0 if run.healthy(found) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinystack", description="An IaaS cloud that speaks the OpenStack APIs.",
        epilog="Also: `tinystack image build` builds the default guest image; "
               "`tinystack conformance {install,config,run,report}` runs Tempest against a cloud (docs/conformance.md); "
               "`tinystack ring <builder-file> <verb>` builds object storage rings (docs/object-rings.md).")
    parser.add_argument("--config", help="INI configuration file (optional)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start every service in one process")
    up.add_argument("--state-dir", help="where the cloud keeps its state (default /var/lib/tinystack as root)")
    up.add_argument("--bind", help="address the APIs listen on (default 127.0.0.1)")
    up.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file (optional)")
    up.set_defaults(func=cmd_up)

    api = sub.add_parser("api", help="run the API services only (split mode; as many as wanted, stateless)",
                         description="The APIs with no agents and no periodic sweeps, against the shared database "
                                     "and RabbitMQ; put several behind a load balancer (docs/deployment.md).")
    api.add_argument("--state-dir", help="where this process keeps its logs, clouds.yaml and service.yaml")
    api.add_argument("--bind", help="address the APIs listen on (default 127.0.0.1)")
    api.add_argument("--services", help="comma-separated APIs to listen for (default: every one)")
    api.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file (optional)")
    api.set_defaults(func=cmd_role)

    conductor = sub.add_parser("conductor", help="run the cloud's once-only periodic work (split mode)",
                               description="No API listens; sweepers and housekeeping run under database leases, "
                                           "so a second conductor stands by and takes over when the first dies.")
    conductor.add_argument("--state-dir", help="where this process keeps its logs")
    conductor.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file (optional)")
    conductor.set_defaults(func=cmd_role)

    agent = sub.add_parser("agent", help="run only this machine's node agents (split mode, against RabbitMQ)",
                           description="The compute and network agents of [DEFAULT] host (and of the [nodes] extras), "
                                       "with no APIs: they join the cloud whose APIs use the same [bus] transport_url. "
                                       "They read the service credentials (service.yaml) from the state dir.")
    agent.add_argument("--state-dir", help="where the agents keep their state and find service.yaml")
    agent.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file (optional)")
    agent.set_defaults(func=cmd_agent)

    doctor = sub.add_parser("doctor", help="check the cloud and this host; say what is wrong and what to do",
                            description="Reads the configuration `tinystack up`/`agent` read. Exit status 0 when "
                                        "healthy, 1 otherwise (docs/operations.md).")
    doctor.add_argument("--state-dir", help="the state dir of the cloud (or node) to check")
    doctor.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file (optional)")
    doctor.add_argument("--json", action="store_true", help="findings as JSON")
    doctor.add_argument("--verbose", "-v", action="store_true", help="list what is fine as well")
    doctor.add_argument("--listen", type=float, default=None,
                        help="seconds to listen for agents' heartbeats on the broker (default 12; 0: do not)")
    doctor.set_defaults(func=cmd_doctor)
    storage = sub.add_parser("storage", help="run an object storage node alone (account, container, object servers)",
                             description="The storage servers of this machine's devices ([object] devices), on "
                                         "[object] storage_ip and the account/container/object ports, with the rings "
                                         "of [object] rings_dir (build them with `tinystack ring` and copy them there first).")
    storage.add_argument("--state-dir", help="where the node keeps its devices, rings and hash path secrets")
    storage.add_argument("--bind", help="address the storage servers listen on (default 127.0.0.1)")
    storage.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file (optional)")
    storage.set_defaults(func=cmd_storage)

    obj = sub.add_parser("object", help="object storage operations")
    osub = obj.add_subparsers(dest="object_command", required=True)
    recon = osub.add_parser("recon", help="health of every storage node: replication age, async pendings, "
                                          "quarantined objects, disk usage, ring md5 agreement",
                            description="Asks each object server in the rings for its /recon checks. Exit status 0 "
                                        "when every node answered, agrees on the rings and has all its devices.")
    recon.add_argument("--state-dir", help="the state dir of the cloud (its rings and hash path secrets)")
    recon.add_argument("--config", default=argparse.SUPPRESS, help="INI configuration file (optional)")
    recon.add_argument("--json", action="store_true", help="every answer as JSON")
    recon.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each node")
    recon.set_defaults(func=cmd_object_recon)

    manage = sub.add_parser("manage", help="operator tasks")
    msub = manage.add_subparsers(dest="manage_command", required=True)
    rotate = msub.add_parser("fernet-rotate", help="rotate the Fernet token keys")
    rotate.add_argument("--state-dir")
    rotate.set_defaults(func=cmd_fernet_rotate)
    sync = msub.add_parser("db-sync", help="upgrade the database schema of every service")
    sync.add_argument("--state-dir")
    sync.set_defaults(func=cmd_db_sync)

    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["conformance"]:
        # The harness has its own parser (and --help); hand it everything after the word.
        from tinystack.conformance.cli import main as conformance_main

        return conformance_main(argv[1:])
    if argv[:1] == ["ring"]:
        # swift-ring-builder's positional shape (<builder-file> <verb> ...), so it has its own parser too.
        from tinystack.object.ring.cli import main as ring_main

        return ring_main(argv[1:])
    if argv[:2] == ["image", "build"]:
        from tinystack.guest.cli import main as image_build_main

        return image_build_main(argv[2:])
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
