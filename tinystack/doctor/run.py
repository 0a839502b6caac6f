"""Runs every check with the configuration ``tinystack up``/``agent`` read, and renders the findings.

The database checks see the whole cloud; the host checks (orphans, disk, KVM) see the machine the doctor runs
on, for each node this configuration runs there; versions and clocks come from heartbeats heard on the bus.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tinystack import nodes as nodes_mod
from tinystack.config import Config
from tinystack.core.bus import Bus
from tinystack.core.db import Database
from tinystack.doctor import database, fleet, node, orphans, stuck
from tinystack.doctor.findings import Finding, info

# Longer than any agent's heartbeat interval (10 s by default): every live agent is heard once.
LISTEN = 12.0


@dataclass(frozen=True)
class Options:
    stuck_after: float
    min_free_mb: int
    max_clock_skew: float
    listen: float

    @classmethod
    def from_config(cls, cfg: Config, listen: float | None = None) -> Options:
        return cls(float(cfg.get("doctor", "stuck_after")), cfg.get_int("doctor", "min_free_mb"),
                   float(cfg.get("doctor", "max_clock_skew")), LISTEN if listen is None else listen)


def _node_configs(cfg: Config) -> list[Config]:
    return [n.config for n in nodes_mod.plan(cfg)] or [cfg]


def _from_database(db: Database, cfg: Config, opts: Options) -> tuple[list[Finding], orphans.Known | None]:
    from tinystack.compute import settings as compute_settings
    from tinystack.network import settings as network_settings
    from tinystack.registry import SERVICES, map_models

    found = database.heads(db.engine, database.histories())
    if any(f.problem for f in found):
        found.append(info(stuck.CHECK, "services, stuck resources and orphans not checked: the schemas are not "
                          "at their head"))
        return found, None
    map_models(SERVICES)
    service_down = float(compute_settings.load(cfg).service_down_time)
    down = {"nova-compute": service_down, **dict.fromkeys(fleet.API_BINARIES, service_down),
            "*": network_settings.load(cfg).agent_down_time}
    found += fleet.liveness(fleet.beats(db), down, time.time(), opts.max_clock_skew)
    now = datetime.now(UTC).replace(tzinfo=None)
    found += stuck.findings(stuck.find(db, now, opts.stuck_after), now, opts.stuck_after)
    return found, orphans.known(db)


async def _this_host(cfg: Config, opts: Options, known: orphans.Known | None) -> list[Finding]:
    from tinystack.compute import agent_settings as compute_agent
    from tinystack.network import agent_settings as network_agent
    from tinystack.volume import agent_settings as volume_agent

    found: list[Finding] = []
    all_netns = await orphans.netns_list()
    dataplane = cfg.values.get("network", {}).get("driver", "linux").strip().lower() == "linux"
    paths: list[Path] = [cfg.state_dir]
    for i, node_cfg in enumerate(_node_configs(cfg)):
        compute = compute_agent.load(node_cfg)
        volume_settings = volume_agent.load(node_cfg)
        volumes = volume_settings.volumes_path
        backend_dirs = tuple(d for d in volume_settings.backends.values() if d != volumes)
        paths += [compute.instances_path, volumes]
        if known is not None:
            # Each node's own namespaces (its network agent's ownership records); the shared instances path and
            # the volume files once, with the first node.
            owned = orphans.owned_namespaces(network_agent.load(node_cfg).state_dir) if dataplane else None
            seen = await orphans.gather(node_cfg.host, compute.node_netns, compute.instances_path,
                                        volumes if i == 0 else None, owned, all_netns, backend_dirs)
            if i:
                seen.qemu, seen.instance_dirs = {}, []
            found += orphans.compare(seen, known)
        if i == 0:
            found.append(node.kvm(compute.image_cache_dir / "kvm-verdict.json", compute.kvm, compute.driver))
    if known is None:
        found.append(info(orphans.CHECK, "orphans not checked: no database to compare with"))
    found += node.disk(paths, opts.min_free_mb)
    return found


async def diagnose(cfg: Config, bus: Bus | None = None, listen: float | None = None) -> list[Finding]:
    """Every finding. ``bus``: a running cloud's bus to hear heartbeats on (else the broker's, when there is one);
    ``listen``: seconds to listen for heartbeats (0: not at all)."""
    opts = Options.from_config(cfg, listen)
    found: list[Finding] = []
    db, reached = await asyncio.to_thread(database.connect, cfg)
    found.append(reached)
    own_bus = None
    if bus is None:
        own_bus, connected = await database.broker(cfg)
        found.append(connected)
        bus = own_bus
    heartbeats = fleet.Heartbeats()
    listening = (asyncio.create_task(heartbeats.listen(bus, opts.listen))
                 if bus is not None and opts.listen > 0 else None)
    try:
        known = None
        if db is not None:
            from_db, known = await asyncio.to_thread(_from_database, db, cfg, opts)
            found += from_db
        found += await _this_host(cfg, opts, known)
        if listening is not None:
            await listening
            found += fleet.skew(heartbeats.heard, opts.max_clock_skew)
        elif bus is None:
            found.append(info(fleet.CHECK_SKEW, "versions and clocks not compared: no broker to hear heartbeats on "
                              "(a one-process cloud runs one version on one clock)"))
    finally:
        if listening is not None and not listening.done():
            listening.cancel()
        if own_bus is not None:
            await own_bus.close()
        if db is not None:
            db.dispose()
    return found


def healthy(found: list[Finding]) -> bool:
    return not any(f.problem for f in found)


def render_text(found: list[Finding], verbose: bool = False) -> str:
    problems = [f for f in found if f.problem]
    lines = [f"tinystack doctor: {'healthy' if not problems else f'{len(problems)} problem(s)'} "
             f"({len(found)} findings)"]
    for f in sorted(found, key=lambda f: (not f.problem, f.check)):
        if not f.problem and not verbose and f.level != "info":
            continue
        lines.append(f"{f.level.upper():<8}{f.check:<10}{f.what}")
        if f.todo:
            lines.append(f"{'':<18}-> {f.todo}")
    return "\n".join(lines)


def render_json(found: list[Finding]) -> str:
    return json.dumps({"healthy": healthy(found), "findings": [f.as_dict() for f in found]}, indent=1)
